"""Cross-origin requests from browsers: the allowed origins are a setting (none by default)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.settings import ApiSettings

# Preflight answers may be cached by the browser this long.
PREFLIGHT_MAX_AGE_S = 600


def allow_cross_origin(app: FastAPI, api: ApiSettings) -> None:
    """Answer preflight requests and add CORS headers for the configured origins (outermost middleware:
    a preflight carries no credential and must not meet authentication). Nothing when none is configured."""
    if not api.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=api.cors_origins,
        allow_credentials=api.cors_allow_credentials,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
        max_age=PREFLIGHT_MAX_AGE_S,
    )
