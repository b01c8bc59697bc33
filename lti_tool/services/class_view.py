"""What a mentor sees on a placement: who started, who completed, grade deliveries,
the version in use and newer published versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.content.model import Module
from lti_tool.domain.launch import LaunchContext
from lti_tool.domain.progress import summarize
from lti_tool.domain.roster import SOURCE_LAUNCHES
from lti_tool.models import Attempt, GradeOutboxRow, User
from lti_tool.store import KeyValueStore

from .grades import latest_rows
from .learning import attempt_progress
from .placements import PlacementView, resolve_version
from .published import PublishedContent, PublishedVersion
from .roster import RosterSource, class_roster

NOT_STARTED = "not_started"
STARTED = "started"
COMPLETED = "completed"


@dataclass(frozen=True)
class LearnerRow:
    user_id: str
    name: str | None
    status: str
    version: str | None = None
    sections_seen: int = 0
    sections_total: int = 0
    right: int = 0
    needed: int = 0
    completed_at: datetime | None = None
    #: State of the newest grade delivery (None: nothing to send yet).
    delivery: str | None = None
    delivery_error: str | None = None
    delivery_row: int | None = None
    delivery_tries: int = 0
    on_roster: bool = True


@dataclass(frozen=True)
class VersionChoice:
    """A newer published version a mentor can move the placement to."""

    pin: str
    version: PublishedVersion
    is_major: bool


@dataclass(frozen=True)
class ClassView:
    placement: PlacementView
    serving: PublishedVersion
    title: str
    rows: tuple[LearnerRow, ...]
    roster_source: str
    roster_note: str
    choices: tuple[VersionChoice, ...]

    @property
    def counts(self) -> dict[str, int]:
        out = {NOT_STARTED: 0, STARTED: 0, COMPLETED: 0}
        for row in self.rows:
            out[row.status] += 1
        return out


def _choices(
    placement: PlacementView, serving: PublishedVersion, versions: tuple[PublishedVersion, ...]
) -> tuple[VersionChoice, ...]:
    newer = [v for v in versions if v.version > serving.version]
    choices: list[VersionChoice] = []
    same_major = [v for v in newer if v.major == serving.major]
    if same_major and placement.pin != str(serving.major):
        # An exact pin does not follow minor releases: offer the newest of its MAJOR.
        choices.append(VersionChoice(str(serving.major), same_major[0], False))
    other = [v for v in newer if v.major > serving.major]
    if other:
        choices.append(VersionChoice(str(other[0].major), other[0], True))
    return tuple(choices)


def class_view(
    session: Session,
    store: KeyValueStore,
    published: PublishedContent,
    source: RosterSource,
    launch: LaunchContext,
    placement: PlacementView,
    roster_ttl: int,
    *,
    refresh: bool = False,
) -> ClassView:
    serving = resolve_version(session, published, placement)
    item = published.item(session, placement.item_id, str(serving.version))
    title = item.title.get(launch.locale) if item is not None else placement.item_id
    roster = class_roster(session, store, source, launch, roster_ttl, refresh=refresh)
    attempts = session.execute(
        select(Attempt, User.sub, User.name, User.given_name, User.family_name)
        .join(User, User.id == Attempt.user_pk)
        .where(Attempt.resource_link_pk == placement.resource_link_pk)
        .order_by(Attempt.major.desc(), Attempt.id)
    ).all()
    by_sub: dict[str, tuple[Attempt, str | None]] = {}
    for attempt, sub, name, given, family in attempts:
        if sub not in by_sub:  # the newest MAJOR's attempt
            full = name or " ".join(p for p in (given, family) if p) or None
            by_sub[sub] = (attempt, full)
    deliveries = latest_rows(session, placement.resource_link_pk)
    rows: list[LearnerRow] = []
    seen: set[str] = set()
    learners = [m for m in roster.members if m.is_learner and m.status != "Deleted"]
    for member in learners:
        seen.add(member.user_id)
        rows.append(_row(session, published, member.user_id, member.name, by_sub, deliveries))
    for sub in by_sub:
        if sub not in seen:
            rows.append(
                _row(
                    session,
                    published,
                    sub,
                    by_sub[sub][1],
                    by_sub,
                    deliveries,
                    on_roster=roster.source == SOURCE_LAUNCHES,
                )
            )
    rows.sort(key=lambda r: ((r.name or r.user_id).casefold(), r.user_id))
    return ClassView(
        placement=placement,
        serving=serving,
        title=title,
        rows=tuple(rows),
        roster_source=roster.source,
        roster_note=roster.note,
        choices=_choices(placement, serving, published.versions(session, placement.item_id)),
    )


def _row(
    session: Session,
    published: PublishedContent,
    sub: str,
    name: str | None,
    by_sub: dict[str, tuple[Attempt, str | None]],
    deliveries: dict[str, GradeOutboxRow],
    on_roster: bool = True,
) -> LearnerRow:
    delivery = deliveries.get(sub)
    extra: dict[str, Any] = {}
    if delivery is not None:
        extra = {
            "delivery": delivery.state,
            "delivery_error": delivery.last_error,
            "delivery_row": delivery.id,
            "delivery_tries": delivery.tries,
        }
    found = by_sub.get(sub)
    if found is None:
        return LearnerRow(sub, name, NOT_STARTED, on_roster=on_roster, **extra)
    attempt, attempt_name = found
    module = published.item(session, attempt.item_id, attempt.version)
    seen = right = needed = total = 0
    if isinstance(module, Module):
        summary = summarize(module, attempt_progress(attempt))
        seen, total = summary.sections_seen, summary.sections_total
        right, needed = summary.counting_right, summary.needed
    return LearnerRow(
        user_id=sub,
        name=name or attempt_name,
        status=COMPLETED if attempt.completed_at else STARTED,
        version=attempt.version,
        sections_seen=seen,
        sections_total=total,
        right=right,
        needed=needed,
        completed_at=attempt.completed_at,
        on_roster=on_roster,
        **extra,
    )
