"""The packaged stylesheet and condition script, their CSP hashes, and the page template (compiled once)."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, Template


def _static(name: str) -> str:
    return resources.files("render").joinpath("static", name).read_text(encoding="utf-8")


def csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


STYLESHEET = _static("form.css")
CONDITION_SCRIPT = _static("conditions.js")

# Nothing loads but the page's own inline style and script (by hash) and data: images; no submit target.
_POLICY = (
    "default-src 'none'",
    f"style-src {csp_hash(STYLESHEET)}",
    f"script-src {csp_hash(CONDITION_SCRIPT)}",
    "img-src data:",
    "font-src 'none'",
    "connect-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
)
# The policy as a <meta> element carries it inside saved pages; frame-ancestors only works as a header.
CSP_META = "; ".join(_POLICY)
CSP = "; ".join((*_POLICY, "frame-ancestors 'none'"))


@cache
def page_template() -> Template:
    """The HTML page template, compiled on first use and reused for the life of the process."""
    environment = Environment(
        loader=PackageLoader("render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    return environment.get_template("page.html.j2")
