"""PageForge Explorer: the static page at /explorer/, served by the API process (and by the gateway in
per-service mode) under a strict CSP. It uses the public API only, with the key the user signs in with."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from render.assets import CONDITION_SCRIPT, STYLESHEET, csp_hash

router = APIRouter(include_in_schema=False)

STATIC = files("app.explorer") / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
ASSETS = {
    name: MEDIA_TYPES[name[name.rindex(".") :]] for name in ("index.html", "explorer.js", "explorer.css")
}
# Its own script and stylesheet; in the render previews (sandboxed frames that inherit this policy), the
# renders' own inline stylesheet and condition script, by hash. Requests only to this origin.
CSP = "; ".join(
    (
        "default-src 'none'",
        f"script-src 'self' {csp_hash(CONDITION_SCRIPT)}",
        f"style-src 'self' {csp_hash(STYLESHEET)}",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/explorer")
async def explorer_root() -> RedirectResponse:
    return RedirectResponse("/explorer/", status_code=308)  # a path only: no Host header in it


@router.get("/explorer/")
async def explorer_page() -> Response:
    return asset("index.html")


@router.get("/explorer/{name}")
async def explorer_asset(name: str) -> Response:
    return asset(name)


def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404, headers=HEADERS)
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=HEADERS)
