"""Playwright (Python) on Debian's Chromium: a test tool's own browser download fails on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, sync_playwright

from tests.conftest import ARTIFACTS
from tests.fleet.data import PASSWORD

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


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator[Browser]:
    """Debian's Chromium, headless, for a module's tests."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        yield browser
        browser.close()


def watch(page: Page, problems: list[str]) -> Page:
    """Record in ``problems`` what goes wrong in the page: console errors, script exceptions, and every
    answer >= 400 as "STATUS /path" or "STATUS /path?query" (a test that expects one takes it out)."""

    def on_console(message: ConsoleMessage) -> None:
        # "Failed to load resource" repeats a bad answer, which on_response records with its path
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400:
            url = urlsplit(response.url)
            problems.append(f"{response.status} {url.path}" + (f"?{url.query}" if url.query else ""))

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", on_response)
    return page


def new_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A desktop-sized, Vietnamese-first browser context on the site (``options`` override)."""
    values: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "locale": "vi-VN"}
    return browser.new_context(**{**values, "base_url": base_url, **options})


@contextmanager
def watched_page(browser: Browser, base_url: str, problems: list[str], **options: Any) -> Iterator[Page]:
    """A page of a fresh context, watched (``watch``); after the block, nothing may have gone wrong: a
    CSP violation, a script error, a missing asset each shows up in ``problems``."""
    context = new_context(browser, base_url, **options)
    try:
        yield watch(context.new_page(), problems)
    finally:
        context.close()
    assert problems == []


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_load_state("networkidle")
