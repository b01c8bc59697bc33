"""`lti-tool worker` processes sharing one outbox: no row claimed twice, and a worker
killed mid-delivery loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from lti_tool.db import get_db
from lti_tool.domain import grades as g
from lti_tool.models import (
    OUTBOX_SENDING,
    OUTBOX_TERMINAL,
    GradeOutboxRow,
    Registration,
    ResourceLink,
)
from lti_tool.services import grades as grade_service
from lti_tool.settings import Settings
from tests.functional.conftest import Lms

ROOT = Path(__file__).resolve().parents[2]


def queue_scores(app: Flask, lms: Lms, users: int, *, per_user: int = 1) -> None:
    """Outbox rows as completions write them: ``per_user`` grades each, newest last."""
    with get_db(app).session() as session:
        reg = session.scalars(select(Registration.id)).one()
        link = ResourceLink(issuer=lms.platform.issuer, resource_link_id="rl-workers", title="")
        session.add(link)
        session.flush()
        base = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        for n in range(per_user):
            for u in range(users):
                sub = f"worker-learner-{u}"
                session.execute(
                    update(GradeOutboxRow)
                    .where(GradeOutboxRow.user_sub == sub, GradeOutboxRow.state == "pending")
                    .values(state="superseded", finished_at=base)
                )
                session.add(
                    GradeOutboxRow(
                        registration_pk=reg,
                        resource_link_pk=link.id,
                        user_sub=sub,
                        line_item_url=lms.platform.ags_lineitem_url,
                        lineitems_url=None,
                        resource_link_id="rl-workers",
                        resource_id="m01-maturite@1",
                        tag=g.COMPLETION_TAG,
                        label="M01",
                        score_given=float(n + 1) / per_user,
                        score_maximum=1.0,
                        activity_progress="Completed",
                        grading_progress="FullyGraded",
                        timestamp=g.iso_timestamp(base + timedelta(minutes=n)),
                    )
                )


def start_worker(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATAIDE_ENV": "testing",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "BASE_URL": settings.base_url,
        "CONTENT_PATH": settings.content_path,
        "INSTANCE_PATH": settings.instance_path,
        "GRADE_WORKER": "off",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "lti_tool.cli", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def states(app: Flask) -> dict[str, int]:
    with get_db(app).session() as session:
        return grade_service.outbox_counts(session)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_two_worker_processes_deliver_each_row_once(
    lms: Lms, app: Flask, settings: Settings
) -> None:
    queue_scores(app, lms, users=40, per_user=2)
    lms.platform.faults.latency = 0.05
    workers = [start_worker(settings, "--once", "--concurrency", "4") for _ in range(2)]
    try:
        for proc in workers:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    counts = states(app)
    assert counts == {"delivered": 40, "superseded": 40}, counts
    # Superseded rows were never sent; each delivered one exactly once.
    assert len(lms.platform.score_posts) == 40
    assert {s for (_item, s) in lms.platform.scores} == {f"worker-learner-{u}" for u in range(40)}
    assert all(score["scoreGiven"] == 1.0 for score in lms.platform.scores.values())


@pytest.mark.slow
def test_worker_killed_mid_delivery_loses_nothing(
    lms: Lms, app: Flask, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_scores(app, lms, users=12)
    lms.platform.faults.latency = 2.0  # the worker is surely mid-request when killed
    proc = start_worker(settings, "--concurrency", "4")
    try:
        wait_for(lambda: states(app).get(OUTBOX_SENDING, 0) >= 4, 30, "worker never claimed")
        wait_for(lambda: lms.platform.ags_requests >= 1, 30, "no request")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    lms.platform.faults.latency = 0.0
    stranded = states(app).get(OUTBOX_SENDING, 0)
    assert stranded >= 4
    # Another worker takes the dead worker's rows back once their lease expires.
    monkeypatch.setattr(grade_service, "LEASE_SECONDS", 1)
    time.sleep(1.2)
    worker = app.extensions["dataide_grade_worker"]
    deadline = time.monotonic() + 30
    while True:
        worker.run_until_idle(30)
        with get_db(app).session() as session:
            left = session.scalar(
                select(func.count())
                .select_from(GradeOutboxRow)
                .where(GradeOutboxRow.state.not_in(OUTBOX_TERMINAL))
            )
        if not left:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert states(app) == {"delivered": 12}
    # Exactly one score per learner; a request of the dead worker may have landed
    # first, and its retry was then a 409 (applied).
    assert len(lms.platform.scores) == 12
    assert all(s["scoreGiven"] == 1.0 for s in lms.platform.scores.values())
    statuses = [p["status"] for p in lms.platform.score_posts]
    assert set(statuses) <= {200, 409}
