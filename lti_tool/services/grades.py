"""The grade outbox: scores written with what they grade, delivered later by a worker.

Rows are written in the transaction of the fact they grade (a module's completion) and
hold everything delivery needs. A newer row for the same (placement, column, user)
supersedes older pending ones. Workers claim rows with a conditional UPDATE and check
the row count, so any number of threads, processes and hosts can deliver at once.
Every row ends in exactly one terminal state: delivered, superseded, not_gradable or
failed. Delivery is at least once; the platform keeps the latest timestamp.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain import grades as g
from lti_tool.domain.launch import LaunchContext
from lti_tool.models import (
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_NOT_GRADABLE,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SUPERSEDED,
    OUTBOX_TERMINAL,
    GradeOutboxRow,
    LineItem,
    utcnow,
)

#: A row claimed longer ago than this is taken back (its worker died mid-delivery).
LEASE_SECONDS = 120
#: How long a row waits when another worker is creating its line item.
LINE_ITEM_WAIT_SECONDS = 2.0


class GradePublisher(Protocol):
    """Sends scores to platforms (``lti_tool.lti.AgsPublisher``)."""

    def line_item_url(
        self, session: Session, registration_pk: int, request: g.LineItemRequest
    ) -> str: ...

    def post_score(
        self, session: Session, registration_pk: int, line_item_url: str, score: g.ScorePost
    ) -> g.DeliveryResult: ...


@dataclass(frozen=True)
class GradeSpec:
    """What to send for one learner on one placement."""

    resource_id: str
    tag: str
    label: str
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    graded_at: datetime


def remember_launch_line_item(
    session: Session, launch: LaunchContext, resource_link_pk: int, resource_id: str
) -> None:
    """Record the line item a launch names (declarative AGS) as the column of
    ``resource_id``.

    The platform's column belongs to the first MAJOR the placement served: after a move to
    a new MAJOR the launch still names the old column, which must keep the old grades.
    """
    url = launch.ags.lineitem_url if launch.ags else None
    if not url:
        return
    rows = session.scalars(
        select(LineItem).where(LineItem.resource_link_pk == resource_link_pk)
    ).all()
    launch_row = next((r for r in rows if r.from_launch), None)
    if launch_row is not None:
        if launch_row.url != url:
            launch_row.url = url  # the platform moved its column (course restore, say)
            launch_row.updated_at = utcnow()
        return
    if any(r.resource_id == resource_id for r in rows):
        return
    try:
        with session.begin_nested():
            session.add(
                LineItem(
                    resource_link_pk=resource_link_pk,
                    resource_id=resource_id,
                    url=url,
                    from_launch=True,
                )
            )
    except IntegrityError:
        pass


def enqueue_score(
    session: Session, launch: LaunchContext, attempt_pk: int | None, spec: GradeSpec
) -> GradeOutboxRow | None:
    """Write an outbox row for the launch's person (the caller commits with its fact).

    Returns None when the launch has no AGS endpoint (nowhere to send).
    """
    ags = launch.ags
    if ags is None or launch.resource_link_pk is None or launch.resource_link_id is None:
        return None
    if not (ags.lineitem_url or ags.lineitems_url):
        return None
    known = session.scalars(
        select(LineItem.url).where(
            LineItem.resource_link_pk == launch.resource_link_pk,
            LineItem.resource_id == spec.resource_id,
        )
    ).first()
    line_item_url = known
    if line_item_url is None and ags.lineitem_url and not ags.lineitems_url:
        line_item_url = ags.lineitem_url  # the only column the platform lets us write
    now = utcnow()
    session.execute(
        update(GradeOutboxRow)
        .where(
            GradeOutboxRow.resource_link_pk == launch.resource_link_pk,
            GradeOutboxRow.resource_id == spec.resource_id,
            GradeOutboxRow.user_sub == launch.sub,
            GradeOutboxRow.state == OUTBOX_PENDING,
        )
        .values(state=OUTBOX_SUPERSEDED, finished_at=now)
    )
    row = GradeOutboxRow(
        registration_pk=launch.registration_pk,
        resource_link_pk=launch.resource_link_pk,
        attempt_pk=attempt_pk,
        user_pk=launch.user_pk,
        user_sub=launch.sub,
        line_item_url=line_item_url,
        lineitems_url=ags.lineitems_url,
        resource_link_id=launch.resource_link_id,
        resource_id=spec.resource_id,
        tag=spec.tag,
        label=spec.label[:255],
        score_given=spec.score_given,
        score_maximum=spec.score_maximum,
        activity_progress=spec.activity_progress,
        grading_progress=spec.grading_progress,
        timestamp=g.iso_timestamp(spec.graded_at),
        state=OUTBOX_PENDING,
        tries=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def retry_row(session: Session, row_pk: int, resource_link_pk: int) -> GradeOutboxRow | None:
    """A new pending copy of a failed or not-gradable row of this placement. Commits.

    Returns None when the row is not this placement's or not in a state to retry.
    """
    row = session.get(GradeOutboxRow, row_pk)
    if row is None or row.resource_link_pk != resource_link_pk:
        return None
    if row.state not in (OUTBOX_FAILED, OUTBOX_NOT_GRADABLE):
        return None
    newer = session.scalar(
        select(func.count())
        .select_from(GradeOutboxRow)
        .where(
            GradeOutboxRow.resource_link_pk == row.resource_link_pk,
            GradeOutboxRow.resource_id == row.resource_id,
            GradeOutboxRow.user_sub == row.user_sub,
            GradeOutboxRow.id > row.id,
        )
    )
    if newer:
        return None
    now = utcnow()
    copy = GradeOutboxRow(
        **{
            c: getattr(row, c)
            for c in (
                "registration_pk",
                "resource_link_pk",
                "attempt_pk",
                "user_pk",
                "user_sub",
                "line_item_url",
                "lineitems_url",
                "resource_link_id",
                "resource_id",
                "tag",
                "label",
                "score_given",
                "score_maximum",
                "activity_progress",
                "grading_progress",
                "timestamp",
            )
        },
        state=OUTBOX_PENDING,
        tries=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(copy)
    session.commit()
    return copy


def latest_rows(session: Session, resource_link_pk: int) -> dict[str, GradeOutboxRow]:
    """The newest outbox row per user sub of a placement."""
    rows = session.scalars(
        select(GradeOutboxRow)
        .where(GradeOutboxRow.resource_link_pk == resource_link_pk)
        .order_by(GradeOutboxRow.id)
    ).all()
    return {row.user_sub: row for row in rows}


# -- delivery ----------------------------------------------------------------------------


_OUTBOX = cast(Table, GradeOutboxRow.__table__)


def _claim_candidates(
    session: Session, now: datetime, expired: datetime, limit: int, busy: Sequence[int]
) -> list[Any]:
    """Due rows, oldest due first: pending ones whose time has come (the partial index),
    then claims whose lease expired. Core statements: this runs for every batch."""
    t = _OUTBOX
    other = t.alias("other")
    in_flight = exists().where(
        other.c.resource_link_pk == t.c.resource_link_pk,
        other.c.resource_id == t.c.resource_id,
        other.c.user_sub == t.c.user_sub,
        other.c.state == OUTBOX_SENDING,
        other.c.id != t.c.id,
        # A live claim holds every other row of its key; an expired one (its worker died)
        # still holds the newer rows, so the older grade is sent again first.
        or_(other.c.claimed_at >= expired, other.c.id < t.c.id),
    )
    columns = (t.c.id, t.c.resource_link_pk, t.c.resource_id, t.c.user_sub)
    rows: list[Any] = []
    for condition in (
        and_(t.c.state == OUTBOX_PENDING, t.c.next_attempt_at <= now),
        and_(t.c.state == OUTBOX_SENDING, t.c.claimed_at < expired),
    ):
        query = select(*columns).where(condition, ~in_flight)
        if busy:
            query = query.where(t.c.id.not_in(list(busy)))
        # PostgreSQL: workers skip the rows another worker is claiming instead of all
        # racing for the same ones (SQLite has one writer at a time and no row locks).
        query = (
            query.order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit * 2 - len(rows))
            .with_for_update(skip_locked=True, of=t)
        )
        rows.extend(session.execute(query).all())
        if len(rows) >= limit * 2:
            break
    return rows


def claim_due(session: Session, worker: str, limit: int, busy: Sequence[int] = ()) -> list[int]:
    """Claim up to ``limit`` due rows for ``worker``; returns their ids. Commits.

    A row is due when pending and its time has come, or when its claim expired. A row
    whose (placement, column, user) has another row in flight waits, which keeps order.
    """
    now = utcnow()
    expired = now - timedelta(seconds=LEASE_SECONDS)
    chosen: list[int] = []
    keys: set[tuple[int, str, str]] = set()
    for row_id, link_pk, resource, sub in _claim_candidates(session, now, expired, limit, busy):
        if len(chosen) >= limit:
            break
        if (link_pk, resource, sub) not in keys:  # one row per key at a time, oldest first
            keys.add((link_pk, resource, sub))
            chosen.append(int(row_id))
    if not chosen:
        session.commit()
        return []
    t = _OUTBOX
    due = or_(
        and_(t.c.state == OUTBOX_PENDING, t.c.next_attempt_at <= now),
        and_(t.c.state == OUTBOX_SENDING, t.c.claimed_at < expired),
    )
    # One UPDATE for the batch; `due` is checked again, so a row another worker claimed
    # meanwhile is not returned.
    claimed = session.execute(
        update(t)
        .where(t.c.id.in_(chosen), due)
        .values(state=OUTBOX_SENDING, claimed_at=now, claimed_by=worker[:120])
        .returning(t.c.id)
    ).all()
    session.commit()
    return sorted(int(r[0]) for r in claimed)


def _finish(session: Session, row: GradeOutboxRow, worker: str, **values: object) -> bool:
    t = _OUTBOX
    result = session.execute(
        update(t)
        .where(t.c.id == row.id, t.c.state == OUTBOX_SENDING, t.c.claimed_by == worker[:120])
        .values(**values)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _reschedule(
    session: Session,
    row: GradeOutboxRow,
    worker: str,
    status: int | None,
    error: str,
    *,
    count_try: bool = True,
    delay: float | None = None,
) -> str:
    tries = row.tries + (1 if count_try else 0)
    if tries >= g.MAX_TRIES:
        _finish(
            session,
            row,
            worker,
            state=OUTBOX_FAILED,
            tries=tries,
            last_status=status,
            last_error=(error or "too many tries")[:500],
            finished_at=utcnow(),
            claimed_by=None,
        )
        return OUTBOX_FAILED
    wait = delay if delay is not None else g.retry_delay(tries, random.random())  # noqa: S311
    _finish(
        session,
        row,
        worker,
        state=OUTBOX_PENDING,
        tries=tries,
        last_status=status,
        last_error=error[:500] or None,
        claimed_by=None,
        next_attempt_at=utcnow() + timedelta(seconds=wait),
    )
    return OUTBOX_PENDING


def _line_item_for(session: Session, publisher: GradePublisher, row: GradeOutboxRow) -> str | None:
    """The row's line item URL; found or created once per (placement, column).

    Returns None when another worker is creating it (the row waits a little).
    Raises what the publisher raises.
    """
    known = session.scalars(
        select(LineItem).where(
            LineItem.resource_link_pk == row.resource_link_pk,
            LineItem.resource_id == row.resource_id,
        )
    ).first()
    if known is not None:
        stale = utcnow() - timedelta(seconds=LEASE_SECONDS)
        if known.url is None and known.created_at < stale:
            # Its creator died mid-creation: take the claim over.
            session.delete(known)
            session.commit()
        else:
            return known.url
    try:
        claim = LineItem(resource_link_pk=row.resource_link_pk, resource_id=row.resource_id)
        session.add(claim)
        session.commit()
    except IntegrityError:
        session.rollback()
        return None  # another worker is creating it
    try:
        url = publisher.line_item_url(
            session,
            row.registration_pk,
            g.LineItemRequest(
                lineitems_url=row.lineitems_url or "",
                resource_link_id=row.resource_link_id,
                resource_id=row.resource_id,
                tag=row.tag,
                label=row.label,
                score_maximum=row.score_maximum,
            ),
        )
    except Exception:
        session.rollback()
        session.delete(claim)
        session.commit()
        raise
    claim.url = url
    claim.updated_at = utcnow()
    session.commit()
    return url


def deliver(session: Session, publisher: GradePublisher, row_pk: int, worker: str) -> str:
    """Send one claimed row; returns the state it is left in."""
    row = session.get(GradeOutboxRow, row_pk)
    if row is None or row.state != OUTBOX_SENDING or row.claimed_by != worker[:120]:
        session.rollback()
        return "lost"
    # Detached: its values stay readable after the rollbacks below without a reload.
    session.expunge(row)
    url = row.line_item_url
    if not url:
        if not row.lineitems_url:
            _finish(
                session,
                row,
                worker,
                state=OUTBOX_FAILED,
                last_error="no line item to post to",
                finished_at=utcnow(),
                claimed_by=None,
            )
            return OUTBOX_FAILED
        try:
            url = _line_item_for(session, publisher, row)
        except Exception as exc:  # the platform failed: retry later
            return _reschedule(session, row, worker, None, f"line item: {exc}")
        if url is None:
            return _reschedule(
                session, row, worker, None, "", count_try=False, delay=LINE_ITEM_WAIT_SECONDS
            )
    score = g.ScorePost(
        user_id=row.user_sub,
        score_given=row.score_given,
        score_maximum=row.score_maximum,
        activity_progress=row.activity_progress,
        grading_progress=row.grading_progress,
        timestamp=row.timestamp,
    )
    try:
        result = publisher.post_score(session, row.registration_pk, url, score)
    except Exception as exc:  # a broken key or registration: retried, counted, visible
        session.rollback()
        return _reschedule(session, row, worker, None, f"{type(exc).__name__}: {exc}")
    session.rollback()  # end the read transaction before writing the outcome
    if result.outcome == g.APPLIED:
        _finish(
            session,
            row,
            worker,
            state=OUTBOX_DELIVERED,
            tries=row.tries + 1,
            last_status=result.status,
            last_error=result.detail or None,
            finished_at=utcnow(),
            claimed_by=None,
        )
        return OUTBOX_DELIVERED
    if result.outcome == g.NOT_GRADABLE:
        _finish(
            session,
            row,
            worker,
            state=OUTBOX_NOT_GRADABLE,
            tries=row.tries + 1,
            last_status=result.status,
            last_error=result.detail[:500],
            finished_at=utcnow(),
            claimed_by=None,
        )
        return OUTBOX_NOT_GRADABLE
    if result.outcome == g.LINE_ITEM_GONE and not row.line_item_url:
        # A column the tool created was deleted in the LMS: create it again next time.
        known = session.scalars(
            select(LineItem).where(
                LineItem.resource_link_pk == row.resource_link_pk,
                LineItem.resource_id == row.resource_id,
                LineItem.url == url,
            )
        ).first()
        if known is not None:
            session.delete(known)
            session.commit()
        return _reschedule(session, row, worker, result.status, "line item deleted")
    if result.outcome in (g.RETRY, g.TOKEN_REJECTED):
        return _reschedule(session, row, worker, result.status, result.detail)
    _finish(
        session,
        row,
        worker,
        state=OUTBOX_FAILED,
        tries=row.tries + 1,
        last_status=result.status,
        last_error=(result.detail or "refused")[:500],
        finished_at=utcnow(),
        claimed_by=None,
    )
    return OUTBOX_FAILED


def outbox_counts(session: Session) -> dict[str, int]:
    """Rows per state (for the worker's log and the health page)."""
    rows = session.execute(
        select(GradeOutboxRow.state, func.count()).group_by(GradeOutboxRow.state)
    ).all()
    return {state: int(n) for state, n in rows}


__all__ = [
    "OUTBOX_DELIVERED",
    "OUTBOX_SUPERSEDED",
    "GradePublisher",
    "GradeSpec",
    "claim_due",
    "deliver",
    "enqueue_score",
    "latest_rows",
    "outbox_counts",
    "remember_launch_line_item",
    "retry_row",
]


#: Finished rows are kept this long, then only the newest of each key stays.
KEEP_FINISHED_DAYS = 90


def purge_finished(session: Session, now: datetime | None = None) -> int:
    """Delete finished rows older than KEEP_FINISHED_DAYS, except the newest row of each
    (placement, column, user), which the class view shows. Returns rows deleted. Commits."""
    t = _OUTBOX
    cutoff = (now or utcnow()) - timedelta(days=KEEP_FINISHED_DAYS)
    newer = t.alias("newer")
    has_newer = exists().where(
        newer.c.resource_link_pk == t.c.resource_link_pk,
        newer.c.resource_id == t.c.resource_id,
        newer.c.user_sub == t.c.user_sub,
        newer.c.id > t.c.id,
    )
    result = session.execute(
        delete(t).where(t.c.state.in_(OUTBOX_TERMINAL), t.c.finished_at < cutoff, has_newer)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
