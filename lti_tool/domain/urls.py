"""Rules for addresses the tool is given by platforms and administrators."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def platform_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a platform endpoint, or None when it can.

    Platform URLs must be absolute https URLs; plain http is allowed on loopback hosts
    only (local development and tests).
    """
    try:
        parts = urlsplit(url or "")
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if not parts.scheme or not host:
        return "must be an absolute URL such as https://lms.example.org/..."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(host):
        return None
    return "must use https (plain http is only accepted for localhost)"


def url_is_under(url: str, base: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base`` and a path inside it.

    ``https://lms.example.org.evil.test/x`` is not under ``https://lms.example.org``.
    """
    try:
        u, b = urlsplit(url), urlsplit(base)
        same_site = (u.scheme, u.hostname, u.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False
    if not same_site or not u.hostname:
        return False
    prefix = b.path.rstrip("/")
    return u.path == prefix or u.path.startswith(prefix + "/")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, or an empty string."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
