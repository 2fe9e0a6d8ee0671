"""The real-browser set-up the browser tests share: Debian's chromium, driven by Playwright.

tests/conftest.py turns :func:`ensure_chromium` into the ``chromium`` fixture.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"  # screenshots and logs the browser tests keep
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """CI must run the browser tests; a developer's machine without a browser may skip them."""
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt (scripts/ensure-chromium.sh) when it is missing."""
    if not CHROMIUM.exists():
        script = ROOT / "scripts" / "ensure-chromium.sh"
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not CHROMIUM.exists():
            unavailable(f"{CHROMIUM} is missing and {script.name} could not install it: "
                        f"{(result.stderr or result.stdout).strip()[-500:]}")
    return CHROMIUM
