"""PageForge Explorer: the static page at /explorer/, served by the API process (and by the gateway in
per-service mode) under a strict CSP. It uses the public API only, with the key the user signs in with."""

from __future__ import annotations

from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, RedirectResponse

from app.settings import ExplorerSettings
from render.assets import CONDITION_SCRIPT, STYLESHEET, csp_hash

STATIC = files("app.explorer") / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
ASSETS = {
    name: MEDIA_TYPES[name[name.rindex(".") :]] for name in ("index.html", "explorer.js", "explorer.css")
}


def content_security_policy(settings: ExplorerSettings) -> str:
    """Its own script and stylesheet; in the render previews (sandboxed frames that inherit this policy),
    the renders' own inline stylesheet and condition script, by hash. Requests to this origin only, and to
    the identity provider's when sign-in goes through it (its discovery document and token endpoint)."""
    connect = "'self'"
    if settings.oidc_issuer is not None:
        issuer = urlsplit(settings.oidc_issuer)
        connect += f" {issuer.scheme}://{issuer.netloc}"
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {csp_hash(CONDITION_SCRIPT)}",
            f"style-src 'self' {csp_hash(STYLESHEET)}",
            "img-src 'self' data: blob:",
            f"connect-src {connect}",
            "frame-src 'self'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def explorer_router(settings: ExplorerSettings) -> APIRouter:
    """The page, its assets and its configuration (how to sign in), under /explorer/."""
    router = APIRouter(include_in_schema=False)
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    oidc = (
        None
        if settings.oidc_issuer is None
        else {
            "issuer": settings.oidc_issuer,
            "client_id": settings.oidc_client_id,
            "scope": settings.oidc_scope,
        }
    )

    def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response(status_code=404, headers=headers)
        return Response((STATIC / name).read_bytes(), media_type=media_type, headers=headers)

    @router.get("/explorer")
    async def explorer_root() -> RedirectResponse:
        return RedirectResponse("/explorer/", status_code=308)  # a path only: no Host header in it

    @router.get("/explorer/")
    async def explorer_page() -> Response:
        return asset("index.html")

    @router.get("/explorer/config.json")
    async def explorer_config() -> JSONResponse:
        return JSONResponse({"oidc": oidc}, headers=headers)

    @router.get("/explorer/{name}")
    async def explorer_asset(name: str) -> Response:
        return asset(name)

    return router
