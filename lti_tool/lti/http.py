"""Outgoing HTTP to platforms: https only (loopback excepted), timeouts, size limits,
a User-Agent (some Moodles answer 403 without one)."""

from __future__ import annotations

import json
from typing import Any

import requests

from lti_tool.domain.urls import platform_url_problem

from .errors import LtiError, PlatformUnreachable

USER_AGENT = "DATAide-LTI-Tool/0.1"


def check_platform_url(url: str, what: str) -> str:
    """Return ``url`` if it is an absolute https URL (or http on a loopback host).

    Raises :class:`LtiError` ``insecure_url`` otherwise.
    """
    problem = platform_url_problem(url)
    if problem:
        raise LtiError("insecure_url", f"{what} {problem}, got {url!r}")
    return url


class PlatformHttp:
    """A requests session with the tool's limits."""

    def __init__(self, timeout: float = 5.0, max_bytes: int = 256 * 1024) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"

    def get_json(self, url: str, what: str, headers: dict[str, str] | None = None) -> Any:
        check_platform_url(url, what)
        return self._json(self._send("GET", url, what, headers=headers), url, what)

    def post_json(
        self, url: str, what: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        check_platform_url(url, what)
        resp = self._send("POST", url, what, json=body, headers=headers)
        return resp.status_code, self._json(resp, url, what, allow_error=True)

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(
                method, url, timeout=self.timeout, stream=True, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            raise PlatformUnreachable("platform_unreachable", f"{what} {url}: {exc}") from exc
        body = bytearray()
        for chunk in resp.iter_content(16384):
            body.extend(chunk)
            if len(body) > self.max_bytes:
                resp.close()
                raise PlatformUnreachable(
                    "platform_response_too_large", f"{what} {url} exceeds {self.max_bytes} bytes"
                )
        resp._content = bytes(body)
        return resp

    def _json(self, resp: requests.Response, url: str, what: str, allow_error: bool = False) -> Any:
        if not allow_error and resp.status_code != 200:
            raise PlatformUnreachable(
                "platform_http_error", f"{what} {url} answered HTTP {resp.status_code}"
            )
        try:
            return json.loads(resp.content or b"null")
        except ValueError as exc:
            if allow_error:
                return None
            raise PlatformUnreachable("platform_bad_json", f"{what} {url} is not JSON") from exc
