"""The grade outbox (``lti_tool.services.grades``) on SQLite and on PostgreSQL.

Rows are written with ``enqueue_score`` from launch contexts built here, claimed with
``claim_due`` from several threads (each with its own session, as worker threads and
processes have), and delivered with ``deliver`` through a recording fake publisher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lti_tool.db import get_db
from lti_tool.domain import grades as g
from lti_tool.domain.launch import RESOURCE_LINK, AgsEndpoint, LaunchContext
from lti_tool.models import (
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_NOT_GRADABLE,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SUPERSEDED,
    GradeOutboxRow,
    LineItem,
    ResourceLink,
    User,
    utcnow,
)
from lti_tool.services import grades as outbox
from lti_tool.services.grades import GradeSpec, claim_due, deliver, enqueue_score, retry_row
from lti_tool.services.platforms import PlatformSpec, add_platform

ISSUER = "https://lms.example.org"
LINEITEMS = f"{ISSUER}/api/lti/courses/1/line_items"
SCOPES = ("https://purl.imsglobal.org/spec/lti-ags/scope/score",)
#: The platform lets the tool create columns (lineitems URL).
AGS_COLUMNS = AgsEndpoint(scopes=SCOPES, lineitems_url=LINEITEMS)
#: The platform gave the only column the tool may write (declarative).
AGS_DECLARATIVE = AgsEndpoint(scopes=SCOPES, lineitem_url=f"{LINEITEMS}/77")
RID = g.resource_id("m01-maturite", 1)


class FakePublisher:
    """Records calls; answers with queued results (applied by default)."""

    def __init__(
        self,
        results: list[g.DeliveryResult] | None = None,
        *,
        line_item_error: Exception | None = None,
        line_item_delay: float = 0.0,
    ) -> None:
        self.results = list(results or [])
        self.line_item_error = line_item_error
        self.line_item_delay = line_item_delay
        self.line_item_requests: list[tuple[int, g.LineItemRequest]] = []
        self.posts: list[tuple[int, str, g.ScorePost]] = []
        self._lock = threading.Lock()

    def line_item_url(
        self, session: Session, registration_pk: int, request: g.LineItemRequest
    ) -> str:
        with self._lock:
            self.line_item_requests.append((registration_pk, request))
            number = len(self.line_item_requests)
        time.sleep(self.line_item_delay)
        if self.line_item_error is not None:
            raise self.line_item_error
        return f"{request.lineitems_url}/{number}"

    def post_score(
        self, session: Session, registration_pk: int, line_item_url: str, score: g.ScorePost
    ) -> g.DeliveryResult:
        with self._lock:
            self.posts.append((registration_pk, line_item_url, score))
            return self.results.pop(0) if self.results else g.DeliveryResult(g.APPLIED, 200)


@dataclass
class World:
    """A registered platform, its placements and learners, and the outbox's database."""

    app: Flask
    registration_pk: int
    deployment_pk: int
    links: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def session(self) -> Session:
        return get_db(self.app).session_factory()

    def link(self, resource_link_id: str) -> int:
        if resource_link_id not in self.links:
            with self.session() as session:
                row = ResourceLink(
                    issuer=ISSUER,
                    resource_link_id=resource_link_id,
                    title=resource_link_id,
                    deployment_id=self.deployment_pk,
                )
                session.add(row)
                session.commit()
                self.links[resource_link_id] = row.id
        return self.links[resource_link_id]

    def user(self, sub: str) -> int:
        if sub not in self.users:
            with self.session() as session:
                row = User(issuer=ISSUER, sub=sub, name=sub)
                session.add(row)
                session.commit()
                self.users[sub] = row.id
        return self.users[sub]

    def launch(
        self, sub: str, resource_link_id: str = "rl-1", ags: AgsEndpoint | None = AGS_COLUMNS
    ) -> LaunchContext:
        return LaunchContext(
            launch_id=f"launch-{sub}-{resource_link_id}",
            message_type=RESOURCE_LINK,
            issuer=ISSUER,
            client_id="tool",
            deployment_id="1",
            sub=sub,
            roles=frozenset({"learner"}),
            locale="fr-CA",
            registration_pk=self.registration_pk,
            deployment_pk=self.deployment_pk,
            resource_link_id=resource_link_id,
            ags=ags,
            user_pk=self.user(sub),
            resource_link_pk=self.link(resource_link_id),
        )

    def enqueue(
        self,
        sub: str,
        resource_link_id: str = "rl-1",
        *,
        ags: AgsEndpoint | None = AGS_COLUMNS,
        resource_id: str = RID,
        score: float | None = 1.0,
    ) -> int:
        launch = self.launch(sub, resource_link_id, ags)
        with self.session() as session:
            row = enqueue_score(session, launch, None, spec(resource_id, score))
            assert row is not None
            session.commit()
            return row.id

    def row(self, row_pk: int) -> GradeOutboxRow:
        with self.session() as session:
            row = session.get(GradeOutboxRow, row_pk)
            assert row is not None
            return row

    def states(self, *row_pks: int) -> list[str]:
        return [self.row(pk).state for pk in row_pks]

    def set(self, row_pk: int, **values: Any) -> None:
        with self.session() as session:
            session.execute(
                update(GradeOutboxRow).where(GradeOutboxRow.id == row_pk).values(**values)
            )
            session.commit()

    def claim(self, worker: str, limit: int = 50) -> list[int]:
        with self.session() as session:
            return claim_due(session, worker, limit)

    def deliver(self, publisher: FakePublisher, row_pk: int, worker: str) -> str:
        with self.session() as session:
            return deliver(session, publisher, row_pk, worker)

    def line_items(self) -> list[LineItem]:
        with self.session() as session:
            return list(session.scalars(select(LineItem).order_by(LineItem.id)))

    def count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(GradeOutboxRow)) or 0


def spec(resource_id: str = RID, score: float | None = 1.0) -> GradeSpec:
    return GradeSpec(
        resource_id=resource_id,
        tag=g.COMPLETION_TAG,
        label="Faire le point : autodiagnostic de maturité numérique",
        score_given=score,
        score_maximum=1.0,
        activity_progress=g.ACTIVITY_COMPLETED,
        grading_progress=g.GRADING_FULLY_GRADED,
        graded_at=utcnow(),
    )


@pytest.fixture
def world(backend_app: Flask) -> World:
    with get_db(backend_app).session() as session:
        reg = add_platform(
            session,
            PlatformSpec(
                issuer=ISSUER,
                client_id="tool",
                auth_login_url=f"{ISSUER}/auth",
                auth_token_url=f"{ISSUER}/token",
                key_set_url=f"{ISSUER}/jwks",
                deployment_ids=("1",),
            ),
        )
        return World(backend_app, reg.id, reg.deployments[0].id)


def run_together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run ``jobs`` in threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


# -- enqueue_score ------------------------------------------------------------------------------


def test_a_new_score_supersedes_the_learners_pending_one_only(world: World) -> None:
    first = world.enqueue("alice")
    bob = world.enqueue("bob")
    other_column = world.enqueue("alice", resource_id=g.resource_id("m01-maturite", 2))
    other_link = world.enqueue("alice", "rl-2")
    second = world.enqueue("alice")

    assert world.states(first, bob, other_column, other_link, second) == [
        OUTBOX_SUPERSEDED,
        OUTBOX_PENDING,
        OUTBOX_PENDING,
        OUTBOX_PENDING,
        OUTBOX_PENDING,
    ]
    assert world.row(first).finished_at is not None
    assert world.row(second).finished_at is None


def test_a_new_score_does_not_supersede_a_row_being_sent(world: World) -> None:
    first = world.enqueue("alice")
    assert world.claim("w1") == [first]
    second = world.enqueue("alice")
    assert world.states(first, second) == [OUTBOX_SENDING, OUTBOX_PENDING]


def test_enqueue_writes_what_delivery_needs(world: World) -> None:
    launch = world.launch("alice")
    graded = spec(score=0.0)
    with world.session() as session:
        row = enqueue_score(session, launch, None, graded)
        assert row is not None
        session.commit()
    stored = world.row(row.id)
    assert (stored.registration_pk, stored.resource_link_pk, stored.user_pk) == (
        world.registration_pk,
        launch.resource_link_pk,
        launch.user_pk,
    )
    assert (stored.user_sub, stored.resource_link_id, stored.resource_id) == ("alice", "rl-1", RID)
    assert stored.score_given == 0.0 and stored.score_maximum == 1.0
    assert stored.timestamp == g.iso_timestamp(graded.graded_at)
    assert (stored.lineitems_url, stored.line_item_url) == (LINEITEMS, None)
    assert (stored.state, stored.tries) == (OUTBOX_PENDING, 0)
    assert stored.next_attempt_at <= utcnow()


def test_enqueue_takes_the_declarative_line_item(world: World) -> None:
    row = world.row(world.enqueue("alice", ags=AGS_DECLARATIVE))
    assert (row.line_item_url, row.lineitems_url) == (AGS_DECLARATIVE.lineitem_url, None)


@pytest.mark.parametrize(
    "change",
    [
        {"ags": None},
        {"ags": AgsEndpoint(scopes=SCOPES)},  # no URL to send to
        {"resource_link_pk": None},
        {"resource_link_id": None},
    ],
)
def test_enqueue_without_ags_writes_nothing(world: World, change: dict[str, Any]) -> None:
    launch = world.launch("alice").with_changes(**change)
    with world.session() as session:
        assert enqueue_score(session, launch, None, spec()) is None
        session.commit()
    assert world.count() == 0


# -- claim_due ----------------------------------------------------------------------------------


def test_concurrent_workers_never_claim_the_same_row(world: World) -> None:
    rows = {world.enqueue(f"learner-{i}") for i in range(40)}
    claims: dict[str, list[int]] = {}

    def worker(name: str) -> Callable[[], None]:
        def run() -> None:
            mine = claims.setdefault(name, [])
            while batch := world.claim(name, limit=3):
                mine.extend(batch)

        return run

    run_together(*(worker(f"w{i}") for i in range(6)))

    every = [pk for mine in claims.values() for pk in mine]
    assert len(every) == len(set(every)), "a row was claimed twice"
    assert set(every) == rows
    for name, mine in claims.items():
        for pk in mine:
            row = world.row(pk)
            assert (row.state, row.claimed_by) == (OUTBOX_SENDING, name)


def test_two_workers_racing_for_the_same_few_rows(world: World) -> None:
    for _round in range(5):
        rows = {world.enqueue(f"learner-{i}") for i in range(4)}
        a, b = run_together(lambda: world.claim("w-a"), lambda: world.claim("w-b"))
        assert not set(a) & set(b)
        assert set(a) | set(b) == rows
        for pk in rows:  # done: the next round enqueues new pending rows
            world.set(pk, state=OUTBOX_DELIVERED)


def test_rows_not_yet_due_wait(world: World) -> None:
    later = world.enqueue("alice")
    now = world.enqueue("bob")
    world.set(later, next_attempt_at=utcnow() + timedelta(seconds=60))
    assert world.claim("w1") == [now]
    world.set(later, next_attempt_at=utcnow() - timedelta(seconds=1))
    assert world.claim("w1") == [later]


def test_claims_go_oldest_due_first(world: World) -> None:
    rows = [world.enqueue(f"learner-{i}") for i in range(5)]
    for age, pk in enumerate(reversed(rows)):
        world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=10 + age))
    assert world.claim("w1", limit=2) == rows[:2]
    assert world.claim("w1", limit=10) == rows[2:]


def test_an_expired_claim_is_taken_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    pk = world.enqueue("alice")
    assert world.claim("w1") == [pk]
    assert world.claim("w2") == []
    world.set(pk, claimed_at=utcnow() - timedelta(seconds=10))

    monkeypatch.setattr(outbox, "LEASE_SECONDS", 30)
    assert world.claim("w2") == []  # claimed 10 s ago, lease 30 s: still w1's
    monkeypatch.setattr(outbox, "LEASE_SECONDS", 5)
    assert world.claim("w2") == [pk]
    assert world.row(pk).claimed_by == "w2"

    publisher = FakePublisher()
    assert world.deliver(publisher, pk, "w1") == "lost"  # the first worker woke up late
    assert publisher.posts == []
    assert world.deliver(publisher, pk, "w2") == OUTBOX_DELIVERED


def test_a_row_waits_while_the_same_grade_is_in_flight(world: World) -> None:
    first = world.enqueue("alice", ags=AGS_DECLARATIVE)
    assert world.claim("w1") == [first]
    second = world.enqueue("alice", ags=AGS_DECLARATIVE)
    bob = world.enqueue("bob", ags=AGS_DECLARATIVE)

    assert world.claim("w2") == [bob]  # alice's newer row waits for her first one
    assert world.deliver(FakePublisher(), first, "w1") == OUTBOX_DELIVERED
    assert world.claim("w2") == [second]


def test_a_taken_back_row_and_its_successor_are_not_both_claimed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.enqueue("alice")
    assert world.claim("w1") == [first]
    second = world.enqueue("alice")
    world.set(first, claimed_at=utcnow() - timedelta(seconds=10))
    monkeypatch.setattr(outbox, "LEASE_SECONDS", 5)

    claimed = world.claim("w2")
    assert claimed in ([first], [second])


def test_busy_rows_are_not_claimed_again_by_their_worker(world: World) -> None:
    pk = world.enqueue("alice")
    world.set(pk, state=OUTBOX_SENDING, claimed_at=utcnow() - timedelta(hours=1))
    with world.session() as session:
        assert claim_due(session, "w1", 10, busy=[pk]) == []
        assert claim_due(session, "w1", 10) == [pk]


# -- deliver ------------------------------------------------------------------------------------


def claimed(world: World, sub: str = "alice", **kwargs: Any) -> int:
    pk = world.enqueue(sub, **kwargs)
    assert pk in world.claim("w1")
    return pk


@pytest.mark.parametrize(
    ("result", "state"),
    [
        (g.DeliveryResult(g.APPLIED, 200), OUTBOX_DELIVERED),
        (g.DeliveryResult(g.APPLIED, 409, "already had it"), OUTBOX_DELIVERED),
        (g.DeliveryResult(g.NOT_GRADABLE, 400, "User is not gradable"), OUTBOX_NOT_GRADABLE),
        (g.DeliveryResult(g.FAILED, 403, "forbidden"), OUTBOX_FAILED),
        (g.DeliveryResult(g.FAILED, 400, ""), OUTBOX_FAILED),
    ],
)
def test_final_outcomes(world: World, result: g.DeliveryResult, state: str) -> None:
    pk = claimed(world, ags=AGS_DECLARATIVE)
    before = world.row(pk)
    publisher = FakePublisher([result])

    assert world.deliver(publisher, pk, "w1") == state

    row = world.row(pk)
    assert (row.state, row.tries, row.last_status) == (state, 1, result.status)
    assert row.finished_at is not None and row.claimed_by is None
    if result.detail:
        assert row.last_error == result.detail
    elif state == OUTBOX_FAILED:
        assert row.last_error  # a failed row always says why
    [(registration_pk, url, score)] = publisher.posts
    assert (registration_pk, url) == (world.registration_pk, AGS_DECLARATIVE.lineitem_url)
    assert score == g.ScorePost(
        user_id="alice",
        score_given=before.score_given,
        score_maximum=before.score_maximum,
        activity_progress=before.activity_progress,
        grading_progress=before.grading_progress,
        timestamp=before.timestamp,
    )
    assert publisher.line_item_requests == []
    assert world.claim("w2") == []  # terminal: never claimed again


@pytest.mark.parametrize(
    "result",
    [
        g.DeliveryResult(g.RETRY, 503, "maintenance"),
        g.DeliveryResult(g.RETRY, 429, ""),
        g.DeliveryResult(g.TOKEN_REJECTED, 401, "invalid token"),
    ],
)
def test_retried_outcomes_go_back_to_pending(world: World, result: g.DeliveryResult) -> None:
    pk = claimed(world, ags=AGS_DECLARATIVE)
    publisher = FakePublisher([result])
    sent = utcnow()

    assert world.deliver(publisher, pk, "w1") == OUTBOX_PENDING

    row = world.row(pk)
    assert (row.state, row.tries, row.last_status) == (OUTBOX_PENDING, 1, result.status)
    assert row.claimed_by is None and row.finished_at is None
    assert row.next_attempt_at > sent
    assert (row.last_error or "") == result.detail
    assert world.claim("w1") == []  # not before its time

    world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=1))
    assert world.claim("w2") == [pk]
    assert world.deliver(publisher, pk, "w2") == OUTBOX_DELIVERED
    assert world.row(pk).tries == 2
    assert [score.timestamp for _r, _u, score in publisher.posts] == [row.timestamp] * 2


def test_the_wait_grows_with_the_tries(world: World) -> None:
    pk = claimed(world, ags=AGS_DECLARATIVE)
    # Three tries apart (x3.4) the jittered ranges (+-25 %) cannot overlap.
    earlier = (15, 18, 21)
    waits: list[float] = []
    for tries in earlier:
        world.set(pk, state=OUTBOX_SENDING, claimed_by="w1", claimed_at=utcnow(), tries=tries)
        sent = utcnow()
        assert world.deliver(FakePublisher([g.DeliveryResult(g.RETRY, 503)]), pk, "w1") == (
            OUTBOX_PENDING
        )
        row = world.row(pk)
        assert row.tries == tries + 1
        waits.append((row.next_attempt_at - sent).total_seconds())
    assert waits == sorted(waits)
    for tries, wait in zip(earlier, waits, strict=True):
        middle = g.retry_delay(tries + 1, 0.5)
        assert 0.75 * middle - 0.01 <= wait <= 1.25 * middle + 5
    assert waits[-1] <= 1.25 * g.BACKOFF_MAX_SECONDS + 5


def test_the_last_try_fails_the_row(world: World) -> None:
    pk = claimed(world, ags=AGS_DECLARATIVE)
    world.set(pk, tries=g.MAX_TRIES - 1)
    publisher = FakePublisher([g.DeliveryResult(g.RETRY, 502, "bad gateway")])

    assert world.deliver(publisher, pk, "w1") == OUTBOX_FAILED

    row = world.row(pk)
    assert (row.state, row.tries, row.last_status) == (OUTBOX_FAILED, g.MAX_TRIES, 502)
    assert row.finished_at is not None and row.last_error == "bad gateway"


def test_a_line_item_is_created_once_per_column(world: World) -> None:
    alice = claimed(world, "alice")
    publisher = FakePublisher()
    assert world.deliver(publisher, alice, "w1") == OUTBOX_DELIVERED

    [(registration_pk, request)] = publisher.line_item_requests
    assert registration_pk == world.registration_pk
    row = world.row(alice)
    assert request == g.LineItemRequest(
        lineitems_url=LINEITEMS,
        resource_link_id="rl-1",
        resource_id=RID,
        tag=g.COMPLETION_TAG,
        label=row.label,
        score_maximum=row.score_maximum,
    )
    [item] = world.line_items()
    assert (item.resource_id, item.from_launch) == (RID, False)
    assert item.url is not None and publisher.posts[0][1] == item.url

    bob = claimed(world, "bob")
    assert world.deliver(publisher, bob, "w1") == OUTBOX_DELIVERED
    assert len(publisher.line_item_requests) == 1
    assert publisher.posts[1][1] == item.url
    # Another column of the same link gets its own line item.
    major2 = claimed(world, "alice", resource_id=g.resource_id("m01-maturite", 2))
    assert world.deliver(publisher, major2, "w1") == OUTBOX_DELIVERED
    assert len(publisher.line_item_requests) == 2
    assert publisher.posts[2][1] != item.url


def test_two_first_grades_racing_create_one_line_item(world: World) -> None:
    alice, bob = world.enqueue("alice"), world.enqueue("bob")
    assert sorted(world.claim("w1") + world.claim("w2")) == sorted([alice, bob])
    owner = {alice: world.row(alice).claimed_by, bob: world.row(bob).claimed_by}
    publisher = FakePublisher(line_item_delay=0.3)

    outcomes = run_together(
        lambda: world.deliver(publisher, alice, str(owner[alice])),
        lambda: world.deliver(publisher, bob, str(owner[bob])),
    )

    assert OUTBOX_DELIVERED in outcomes
    assert len(publisher.line_item_requests) == 1
    for pk, outcome in zip((alice, bob), outcomes, strict=True):
        if outcome == OUTBOX_PENDING:  # it found the column being created: waits, no try
            row = world.row(pk)
            assert row.tries == 0 and row.next_attempt_at > utcnow()
            world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=1))
            assert world.claim("w3") == [pk]
            assert world.deliver(publisher, pk, "w3") == OUTBOX_DELIVERED
    assert world.states(alice, bob) == [OUTBOX_DELIVERED, OUTBOX_DELIVERED]
    assert len(publisher.line_item_requests) == 1
    [item] = world.line_items()
    assert {url for _r, url, _s in publisher.posts} == {item.url}


def test_a_line_item_failure_is_retried_and_leaves_no_claim(world: World) -> None:
    pk = claimed(world)
    broken = FakePublisher(line_item_error=ConnectionError("platform unreachable"))

    assert world.deliver(broken, pk, "w1") == OUTBOX_PENDING

    row = world.row(pk)
    assert (row.state, row.tries) == (OUTBOX_PENDING, 1)
    assert row.last_error is not None and row.last_error.startswith("line item:")
    assert "platform unreachable" in row.last_error
    assert world.line_items() == []  # the next try creates it
    assert broken.posts == []

    world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=1))
    assert world.claim("w1") == [pk]
    fixed = FakePublisher()
    assert world.deliver(fixed, pk, "w1") == OUTBOX_DELIVERED
    assert len(fixed.line_item_requests) == 1 and len(world.line_items()) == 1


def test_a_deleted_column_is_created_again(world: World) -> None:
    pk = claimed(world)
    publisher = FakePublisher([g.DeliveryResult(g.LINE_ITEM_GONE, 404, "no such line item")])

    assert world.deliver(publisher, pk, "w1") == OUTBOX_PENDING
    assert world.line_items() == []
    assert world.row(pk).tries == 1

    world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=1))
    assert world.claim("w1") == [pk]
    assert world.deliver(publisher, pk, "w1") == OUTBOX_DELIVERED
    assert len(publisher.line_item_requests) == 2
    first_url, second_url = (url for _r, url, _s in publisher.posts)
    assert first_url != second_url and world.line_items()[0].url == second_url


def test_a_row_claimed_by_another_worker_is_lost(world: World) -> None:
    pk = claimed(world, ags=AGS_DECLARATIVE)
    publisher = FakePublisher()
    assert world.deliver(publisher, pk, "w2") == "lost"
    assert publisher.posts == []
    row = world.row(pk)
    assert (row.state, row.claimed_by, row.tries) == (OUTBOX_SENDING, "w1", 0)


def test_a_pending_row_is_not_delivered_without_a_claim(world: World) -> None:
    pk = world.enqueue("alice", ags=AGS_DECLARATIVE)
    publisher = FakePublisher()
    assert world.deliver(publisher, pk, "w1") == "lost"
    assert publisher.posts == [] and world.states(pk) == [OUTBOX_PENDING]


# -- retry_row ----------------------------------------------------------------------------------


def ended(world: World, result: g.DeliveryResult, sub: str = "alice") -> int:
    pk = claimed(world, sub, ags=AGS_DECLARATIVE)
    world.deliver(FakePublisher([result]), pk, "w1")
    return pk


@pytest.mark.parametrize(
    "result",
    [
        g.DeliveryResult(g.FAILED, 403, "forbidden"),
        g.DeliveryResult(g.NOT_GRADABLE, 400, "User is not gradable"),
    ],
)
def test_retry_row_copies_a_failed_row(world: World, result: g.DeliveryResult) -> None:
    pk = ended(world, result)
    original = world.row(pk)

    with world.session() as session:
        copy = retry_row(session, pk, world.links["rl-1"])
    assert copy is not None and copy.id != pk

    again = world.row(copy.id)
    assert (again.state, again.tries, again.claimed_by) == (OUTBOX_PENDING, 0, None)
    for column in ("user_sub", "resource_id", "score_given", "timestamp", "line_item_url"):
        assert getattr(again, column) == getattr(original, column)
    assert world.row(pk).state == original.state  # the failed row stays as it was
    assert world.claim("w1") == [copy.id]


def test_retry_row_refuses_another_placements_row(world: World) -> None:
    pk = ended(world, g.DeliveryResult(g.FAILED, 403))
    with world.session() as session:
        assert retry_row(session, pk, world.link("rl-other")) is None
        assert retry_row(session, pk + 1000, world.links["rl-1"]) is None
    assert world.count() == 1


def test_retry_row_refuses_rows_that_did_not_fail(world: World) -> None:
    delivered = ended(world, g.DeliveryResult(g.APPLIED, 200), "alice")
    sending = claimed(world, "bob", ags=AGS_DECLARATIVE)
    pending = world.enqueue("carol")
    superseded = world.enqueue("dave")
    world.enqueue("dave")
    link = world.links["rl-1"]
    with world.session() as session:
        for pk in (delivered, sending, pending, superseded):
            assert retry_row(session, pk, link) is None, world.row(pk).state
    assert world.count() == 5


def test_retry_row_refuses_when_a_newer_grade_exists(world: World) -> None:
    failed = ended(world, g.DeliveryResult(g.FAILED, 403))
    world.enqueue("alice")
    with world.session() as session:
        assert retry_row(session, failed, world.links["rl-1"]) is None


def test_retry_row_once(world: World) -> None:
    failed = ended(world, g.DeliveryResult(g.FAILED, 403))
    other = ended(world, g.DeliveryResult(g.FAILED, 403), "bob")  # another learner's newer row
    link = world.links["rl-1"]
    with world.session() as session:
        assert retry_row(session, failed, link) is not None
    with world.session() as session:
        assert retry_row(session, failed, link) is None  # the copy is newer
        assert retry_row(session, other, link) is not None


def _iter_states(world: World, pks: list[int]) -> Iterator[tuple[int, str]]:
    yield from zip(pks, world.states(*pks), strict=True)


def test_every_row_ends_in_one_terminal_state(world: World) -> None:
    """A small run: a mix of outcomes until the outbox is idle."""
    results = [
        g.DeliveryResult(g.RETRY, 503),
        g.DeliveryResult(g.APPLIED, 200),
        g.DeliveryResult(g.NOT_GRADABLE, 400, "User is not gradable"),
        g.DeliveryResult(g.FAILED, 403),
    ]
    superseded = [world.enqueue("learner-0", ags=AGS_DECLARATIVE) for _ in range(2)]
    pks = [world.enqueue(f"learner-{i}", ags=AGS_DECLARATIVE) for i in range(4)]
    publisher = FakePublisher(results)
    deadline: datetime = utcnow() + timedelta(seconds=30)
    while utcnow() < deadline:
        batch = world.claim("w1")
        if not batch:
            pending = [pk for pk, state in _iter_states(world, pks) if state == OUTBOX_PENDING]
            if not pending:
                break
            for pk in pending:
                world.set(pk, next_attempt_at=utcnow() - timedelta(seconds=1))
            continue
        for pk in batch:
            world.deliver(publisher, pk, "w1")
    assert world.states(*superseded) == [OUTBOX_SUPERSEDED] * 2
    terminal = {OUTBOX_DELIVERED, OUTBOX_NOT_GRADABLE, OUTBOX_FAILED}
    assert all(state in terminal for _pk, state in _iter_states(world, pks))


def test_purge_keeps_recent_rows_and_the_newest_of_each_key(world: World) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=outbox.KEEP_FINISHED_DAYS + 1)
    first = world.enqueue("alice")
    second = world.enqueue("alice")  # supersedes the first
    lone = world.enqueue("bob")
    recent = world.enqueue("carol")
    newest = world.enqueue("carol")
    for pk in (first, second, lone, recent):
        world.set(pk, state="delivered" if pk != first else "superseded", finished_at=old)
    world.set(recent, finished_at=now)
    with world.session() as session:
        deleted = outbox.purge_finished(session, now)
    with world.session() as session:
        left = set(session.scalars(select(GradeOutboxRow.id)))
    assert deleted == 1
    # alice's old superseded row goes; her newest (old but last of its key) stays, as do
    # bob's only row, carol's recent finished row and her pending one.
    assert left == {second, lone, recent, newest}
