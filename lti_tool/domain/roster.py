"""Course rosters as the tool uses them (from NRPS, or rebuilt from launches)."""

from __future__ import annotations

from dataclasses import dataclass

#: Where a roster came from.
SOURCE_NRPS = "nrps"
SOURCE_LAUNCHES = "launches"


@dataclass(frozen=True)
class Member:
    """One person of a course. ``roles`` are tool roles (``learner``, ``mentor``)."""

    user_id: str
    roles: frozenset[str]
    name: str | None = None
    email: str | None = None
    #: ``Active``, ``Inactive`` or ``Deleted`` (NRPS 2.0 status).
    status: str = "Active"

    @property
    def is_learner(self) -> bool:
        return "mentor" not in self.roles


@dataclass(frozen=True)
class Roster:
    members: tuple[Member, ...]
    source: str
    #: Why NRPS was not used, when ``source`` is launches (English, for logs and admins).
    note: str = ""
