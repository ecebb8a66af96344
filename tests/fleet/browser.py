"""Playwright (Python) on Debian's Chromium: a test tool's own browser download fails on this machine."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ARTIFACTS / "fleet"


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/fleet/ (every browser test calls this for its pages)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    # from the top: a full-page capture of a page scrolled down draws the sticky table headers where the
    # scroll left them, over the rows (seen on the kiosk page after using the console at its bottom)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000, f"{path} looks empty"
    return path
