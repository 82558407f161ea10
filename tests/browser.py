"""What the browser tests share: Debian's chromium, driven by playwright-core from the npm lock."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
PLAYWRIGHT = NODE_MODULES / "playwright-core"
CHROMIUM = Path("/usr/bin/chromium")
# Launch flags for a machine with no network beyond the package registries.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_tool(path: Path, what: str) -> None:
    assert path.exists(), f"{what} is missing at {path}: run `make tools`"


def node() -> str:
    """The node executable, with playwright-core and chromium where `make tools` puts them."""
    for path, what in ((PLAYWRIGHT, "npm playwright-core"), (CHROMIUM, "chromium")):
        require_tool(path, what)
    found = shutil.which("node")
    assert found, "node is missing"
    return found
