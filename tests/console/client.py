"""A minimal HTTP client for the console that keeps its session cookie and CSRF token.

The standard library's cookie jar (like most non-browser ones) will not send a
Secure cookie over http://, so the session cookie is carried by hand here; a
real browser is exercised in test_browser.py.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from urllib.parse import urlencode

from tradeguard.console.app import COOKIE


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Client:
    def __init__(self, base: str) -> None:
        self.base, self.sid, self.set_cookies = base, None, []

    def request(self, method: str, path: str, form: dict | None = None):
        data = urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if self.sid:
            req.add_header("Cookie", f"{COOKIE}={self.sid}")
        try:
            resp = _OPENER.open(req, timeout=30)
        except urllib.error.HTTPError as exc:
            resp = exc
        for header in resp.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(header)
            name, _, rest = header.partition("=")
            if name == COOKIE:
                self.sid = rest.split(";", 1)[0] or None
        return resp.status, resp.headers, resp.read().decode()

    def get(self, path: str):
        return self.request("GET", path)

    def csrf(self, path: str = "/") -> str:
        status, _, page = self.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, (status, page[:500])
        return found.group(1)

    def login(self, name: str, password: str) -> int:
        token = self.csrf("/login")
        status, _, _ = self.request("POST", "/login", {"csrf": token, "username": name,
                                                       "password": password, "next": "/"})
        return status

    def act(self, **form) -> tuple[int, str]:
        form.setdefault("csrf", self.csrf())
        status, headers, page = self.request("POST", "/act", form)
        return status, page
