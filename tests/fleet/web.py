"""Helpers for driving the fleet's web app in-process (Starlette's TestClient over httpx)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

with warnings.catch_warnings():
    # Starlette 1.10 would rather use 'httpx2'; the project pins httpx (the TestClient works with it)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from fleet.store import Store
from fleet.web.app import create_app
from fleet.web.core import WebSettings
from fleet.web.queue_web import QueueWebSettings
from tests.fleet.data import PASSWORD

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class Browser:
    """A TestClient with the fleet's login and CSRF handling (what a person's browser does)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD) -> int:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf": csrf_of(page.text), "next": "/"},
            follow_redirects=False,
        )
        if response.status_code == 303:
            self.csrf = csrf_of(self.client.get("/account").text)
        return response.status_code

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        return self.client.post(path, data=form, follow_redirects=False)


@contextmanager
def browser(
    store: Store,
    username: str | None = None,
    settings: WebSettings | None = None,
    client_host: str = "testclient",
    queue: QueueWebSettings | None = None,
) -> Iterator[Browser]:
    with TestClient(create_app(store, settings, queue), client=(client_host, 50000)) as client:
        person = Browser(client)
        if username is not None:
            assert person.login(username) == 303, f"login of {username} failed"
        yield person
