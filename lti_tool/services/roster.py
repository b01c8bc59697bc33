"""Course rosters for mentors: NRPS (paged, cached per context), else built from launches.

Open edX refuses NRPS for courses above its enrolment limit, and a platform may not offer
it at all: the roster is then the people who launched the placement.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.launch import LEARNER, LaunchContext
from lti_tool.domain.roster import SOURCE_LAUNCHES, SOURCE_NRPS, Member, Roster
from lti_tool.models import Attempt, User
from lti_tool.store import KeyValueStore

log = logging.getLogger("lti_tool.roster")


class RosterSource(Protocol):
    """Reads a course's members from the platform (``lti_tool.lti.NrpsRoster``)."""

    def members(
        self, session: Session, registration_pk: int, memberships_url: str
    ) -> tuple[Member, ...]: ...


def _cache_key(launch: LaunchContext) -> str:
    return f"roster:{launch.registration_pk}:{launch.issuer}:{launch.context_id}"


def _encode(members: tuple[Member, ...]) -> str:
    return json.dumps(
        [
            {
                "user_id": m.user_id,
                "roles": sorted(m.roles),
                "name": m.name,
                "email": m.email,
                "status": m.status,
            }
            for m in members
        ]
    )


def _decode(raw: str) -> tuple[Member, ...]:
    return tuple(
        Member(
            user_id=m["user_id"],
            roles=frozenset(m["roles"]),
            name=m.get("name"),
            email=m.get("email"),
            status=m.get("status", "Active"),
        )
        for m in json.loads(raw)
    )


def from_launches(session: Session, resource_link_pk: int) -> tuple[Member, ...]:
    """The learners who opened the placement, as roster members."""
    rows = session.execute(
        select(User.sub, User.name, User.given_name, User.family_name, User.email)
        .join(Attempt, Attempt.user_pk == User.id)
        .where(Attempt.resource_link_pk == resource_link_pk)
        .distinct()
    ).all()
    return tuple(
        Member(
            user_id=sub,
            roles=frozenset({LEARNER}),
            name=name or " ".join(p for p in (given, family) if p) or None,
            email=email,
        )
        for sub, name, given, family, email in rows
    )


def class_roster(
    session: Session,
    store: KeyValueStore,
    source: RosterSource,
    launch: LaunchContext,
    ttl: int,
    *,
    refresh: bool = False,
) -> Roster:
    """The course's members for a mentor's launch. Never raises for a platform failure."""
    assert launch.resource_link_pk is not None
    if launch.nrps_url and launch.context_id:
        key = _cache_key(launch)
        cached = None if refresh else store.get(key)
        if cached is not None:
            return Roster(_decode(cached), SOURCE_NRPS)
        try:
            members = source.members(session, launch.registration_pk, launch.nrps_url)
        except Exception as exc:  # refused (Open edX over its limit) or unreachable
            log.warning("nrps unavailable, roster from launches: %s", exc)
            return Roster(
                from_launches(session, launch.resource_link_pk), SOURCE_LAUNCHES, str(exc)
            )
        if ttl > 0:
            store.put(key, _encode(members), ttl)
        return Roster(members, SOURCE_NRPS)
    return Roster(
        from_launches(session, launch.resource_link_pk),
        SOURCE_LAUNCHES,
        "the platform offers no roster service for this course",
    )


__all__ = ["RosterSource", "class_roster", "from_launches"]
