"""Names and Role Provisioning Services: a course's members, all pages.

Spec: https://www.imsglobal.org/spec/lti-nrps/v2p0
"""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy.orm import Session

from lti_tool.domain.roster import Member

from .ags import ServiceHttp, TokenSource, forget_service_token, with_query
from .claims import SCOPE_NRPS
from .errors import PlatformUnreachable, RosterRefused
from .http import check_platform_url
from .roles import map_roles

MEMBERSHIP_CONTAINER_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
NRPS_SCOPES = (SCOPE_NRPS,)

#: Members asked for per page.
PAGE_LIMIT = 200
#: Pages followed before giving up (10,000 members at the page limit).
MAX_PAGES = 50
#: Largest page read, in bytes.
MAX_PAGE_BYTES = 5 * 1024 * 1024


class NrpsRoster:
    """Course members through NRPS (implements the services' ``RosterSource``)."""

    def __init__(self, tool: TokenSource, timeout: float) -> None:
        self._tool = tool
        self.http = ServiceHttp(timeout, MAX_PAGE_BYTES)

    def close(self) -> None:
        self.http.close()

    def members(
        self, session: Session, registration_pk: int, memberships_url: str
    ) -> tuple[Member, ...]:
        """Every member with a ``user_id``, in the platform's order, once each.

        Raises :class:`RosterRefused` when the platform answers 401 or 403 (Open edX
        above its enrolment limit), :class:`PlatformUnreachable` ``nrps_failed`` for any
        other failure, including more than :data:`MAX_PAGES` pages (a partial roster
        would look complete), or ``service_token_refused``; :class:`LtiError`
        ``insecure_url`` for a URL that is not https.
        """
        check_platform_url(memberships_url, "memberships URL")
        token = self._tool.service_token(session, registration_pk, NRPS_SCOPES)
        url = with_query(memberships_url, {"limit": str(PAGE_LIMIT)})
        members: dict[str, Member] = {}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            seen.add(url)
            try:
                resp = self.http.request(
                    "GET", url, token=token, headers={"Accept": MEMBERSHIP_CONTAINER_TYPE}
                )
            except requests.RequestException as exc:
                raise PlatformUnreachable("nrps_failed", f"GET {url}: {exc}") from exc
            if resp.status in (401, 403):
                if resp.status == 401:
                    forget_service_token(self._tool, session, registration_pk, NRPS_SCOPES)
                raise RosterRefused(f"GET {url} answered HTTP {resp.status}")
            if not resp.ok:
                raise PlatformUnreachable("nrps_failed", f"GET {url} answered HTTP {resp.status}")
            try:
                page = resp.json()
            except ValueError as exc:
                raise PlatformUnreachable("nrps_failed", f"GET {url}: {exc}") from None
            raw_members = page.get("members") if isinstance(page, dict) else None
            if not isinstance(raw_members, list):
                raise PlatformUnreachable("nrps_failed", f"GET {url}: no members list")
            for raw in raw_members:
                member = _member(raw)
                if member is not None:
                    members.setdefault(member.user_id, member)
            if resp.next_url is None or resp.next_url in seen:
                return tuple(members.values())
            url = check_platform_url(resp.next_url, "next page of members")
        raise PlatformUnreachable("nrps_failed", f"{memberships_url}: more than {MAX_PAGES} pages")


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _member(raw: Any) -> Member | None:
    """A :class:`Member` from one NRPS member object; None without a ``user_id``."""
    if not isinstance(raw, dict):
        return None
    user_id = raw.get("user_id")
    # Kept verbatim: it must equal the launches' ``sub``.
    if not isinstance(user_id, str) or not user_id.strip():
        return None
    roles = raw.get("roles")
    name = _text(raw.get("name")) or _text(
        " ".join(p for p in (raw.get("given_name"), raw.get("family_name")) if isinstance(p, str))
    )
    return Member(
        user_id=user_id,
        roles=map_roles(roles if isinstance(roles, list) else []),
        name=name,
        email=_text(raw.get("email")),
        status=_text(raw.get("status")) or "Active",
    )
