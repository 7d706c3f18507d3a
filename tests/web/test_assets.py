"""The vendored front-end files are the ones web/package-lock.json pins."""

from __future__ import annotations

import json
from pathlib import Path

import kumo.web

ROOT = Path(__file__).resolve().parents[2]
VENDOR = Path(kumo.web.__file__).parent / "static" / "vendor"
PACKAGES = ("htmx.org", "@xterm/xterm", "@xterm/addon-fit", "@novnc/novnc")


def test_vendored_versions_are_the_lock_files() -> None:
    """web/vendor.sh records what it copied; a package.json change without a new
    `make web-assets` fails here."""
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())["packages"]
    recorded = dict(
        (name, (version, integrity))
        for name, version, integrity in (
            line.split() for line in (VENDOR / "VERSIONS").read_text().splitlines()
        )
    )
    for name in PACKAGES:
        pinned = lock[f"node_modules/{name}"]
        assert recorded[name] == (pinned["version"], pinned["integrity"]), name


def test_the_files_pages_load_are_there_with_their_licences() -> None:
    for path in (
        "htmx/htmx.min.js",
        "htmx/LICENSE",
        "xterm/xterm.mjs",
        "xterm/xterm.css",
        "xterm/addon-fit.mjs",
        "xterm/LICENSE",
        "novnc/core/rfb.js",
        "novnc/LICENSE.txt",
    ):
        assert (VENDOR / path).stat().st_size > 0, path
