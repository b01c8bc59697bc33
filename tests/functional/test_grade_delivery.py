"""Completions reach the platform's gradebook through AGS (lti1p3platform serves it), even
when the platform fails: 500s, timeouts, 409, 400 "not gradable"."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from lti_tool.content.model import Module
from lti_tool.db import get_db
from lti_tool.domain import grades as g
from lti_tool.models import OUTBOX_TERMINAL, Attempt, GradeOutboxRow, LineItem
from lti_tool.services.grade_worker import GradeWorker
from tests.functional.conftest import Lms, page_code
from tests.functional.platform import LaunchUser
from tests.functional.test_learning import (
    MODULE,
    launch_placed,
    place,
    post,
    right_answers,
)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(g, "BACKOFF_BASE_SECONDS", 0.02)
    monkeypatch.setattr(g, "BACKOFF_FACTOR", 1.0)


@pytest.fixture
def module(app: Flask) -> Module:
    return app.extensions["dataide_catalog"].modules[MODULE]


def worker_of(app: Flask) -> GradeWorker:
    return app.extensions["dataide_grade_worker"]


def drain(app: Flask, timeout: float = 20.0) -> list[GradeOutboxRow]:
    """Run the worker until every outbox row is terminal; return the rows."""
    deadline = time.monotonic() + timeout
    while True:
        worker_of(app).run_until_idle(timeout)
        with get_db(app).session() as session:
            rows = list(session.scalars(select(GradeOutboxRow).order_by(GradeOutboxRow.id)))
        if all(r.state in OUTBOX_TERMINAL for r in rows):
            return rows
        assert time.monotonic() < deadline, [(r.id, r.state, r.last_error) for r in rows]
        time.sleep(0.02)


def complete(lms: Lms, module: Module, custom: dict[str, str], user: LaunchUser) -> str:
    """``user`` answers every counting question right; returns the last page."""
    html = launch_placed(lms, user, custom).get_data(as_text=True)
    answers = right_answers(module)
    for q in module.questions:
        if q.counts:
            html = post(lms, "/learn/answer", html, question=q.id, answer=answers[q.id]).get_data(
                as_text=True
            )
    return html


def test_completion_reaches_the_declarative_line_item(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner(sub="learner-7")
    html = launch_placed(lms, learner, custom).get_data(as_text=True)
    first = next(q for q in module.questions if q.counts)
    post(lms, "/learn/answer", html, question=first.id, answer=right_answers(module)[first.id])
    drain(app)
    assert lms.platform.score_posts == []  # nothing is sent before completion
    complete(lms, module, custom, learner)
    rows = drain(app)
    assert [r.state for r in rows] == ["delivered"]
    score = lms.platform.scores[(1, learner.sub)]
    assert score["scoreGiven"] == 1 and score["scoreMaximum"] == 1
    assert score["activityProgress"] == "Completed"
    assert score["gradingProgress"] == "FullyGraded"
    with get_db(app).session() as session:
        completed_at = session.scalars(select(Attempt.completed_at)).one()
    assert completed_at is not None
    assert datetime.fromisoformat(score["timestamp"]) == completed_at.replace(
        microsecond=completed_at.microsecond // 1000 * 1000
    )
    assert lms.platform.results(1, learner.sub)[0]["resultScore"] == 1


def test_without_a_launch_line_item_one_column_is_created(
    lms: Lms, app: Flask, module: Module
) -> None:
    custom = place(lms)["custom"]
    learners = [LaunchUser.learner(sub=f"learner-{n}") for n in range(3)]
    for user in learners:
        html = launch_placed(lms, user, custom, ags_lineitem=None)
        assert html.status_code == 200, page_code(html)
    for user in learners:
        # Completed before any delivery: the first deliveries race to create the column.
        html = launch_placed(lms, user, custom, ags_lineitem=None).get_data(as_text=True)
        answers = right_answers(module)
        for q in module.questions:
            if q.counts:
                html = post(
                    lms, "/learn/answer", html, question=q.id, answer=answers[q.id]
                ).get_data(as_text=True)
    rows = drain(app)
    assert [r.state for r in rows] == ["delivered"] * 3
    created = {n: item for n, item in lms.platform.lineitems.items() if item.get("resourceId")}
    assert len(created) == 1, lms.platform.lineitems
    ((number, item),) = created.items()
    assert item["resourceId"] == f"{MODULE}@1" and item["tag"] == g.COMPLETION_TAG
    assert item["scoreMaximum"] == 1
    for user in learners:
        assert lms.platform.scores[(number, user.sub)]["scoreGiven"] == 1
    with get_db(app).session() as session:
        assert session.scalars(select(LineItem.url)).all() == [lms.platform.lineitem_url(number)]


@pytest.mark.parametrize(
    ("fault", "expected_posts"),
    [
        (lambda p: p.faults.fail_next(3, status=500), 4),
        (lambda p: p.faults.fail_next(2, status=503), 3),
        (lambda p: p.faults.fail_next(1, status=429), 2),
        (lambda p: p.faults.delay_next(1, 2.5), 2),
    ],
    ids=["500s", "503s", "429", "timeout"],
)
def test_transient_failures_are_retried(
    lms: Lms, app: Flask, module: Module, fault: Any, expected_posts: int
) -> None:
    if fault.__code__.co_names[-1] == "delay_next":
        lms.platform.faults.seed(1)
    app.extensions["dataide_lti"].ags.timeout = 1.0  # the delayed answer comes too late
    custom = place(lms)["custom"]
    learner = LaunchUser.learner()
    fault(lms.platform)
    complete(lms, module, custom, learner)
    rows = drain(app)
    assert [r.state for r in rows] == ["delivered"]
    assert rows[0].tries == expected_posts
    assert len(lms.platform.score_posts) == expected_posts
    assert lms.platform.scores[(1, learner.sub)]["scoreGiven"] == 1
    # Every try sent the same grading time.
    assert len({p["score"]["timestamp"] for p in lms.platform.score_posts}) == 1


def test_conflict_409_counts_as_applied(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner()
    complete(lms, module, custom, learner)
    # The platform already holds a newer grade for this person (as a lost answer to an
    # earlier try, or a grade set in the LMS, would leave it).
    lms.platform.gradebook.post_score(
        1,
        {
            "userId": learner.sub,
            "timestamp": "2099-01-01T00:00:00.000+00:00",
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "scoreGiven": 1,
            "scoreMaximum": 1,
        },
    )
    rows = drain(app)
    assert [r.state for r in rows] == ["delivered"] and rows[0].last_status == 409
    assert lms.platform.scores[(1, learner.sub)]["timestamp"].startswith("2099")


def test_not_gradable_is_terminal_visible_and_retryable(
    lms: Lms, app: Flask, module: Module
) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner(sub="observer-1", name="Léa Tremblay")
    lms.platform.not_gradable = {learner.sub}
    complete(lms, module, custom, learner)
    rows = drain(app)
    assert [r.state for r in rows] == ["not_gradable"]
    assert len(lms.platform.score_posts) == 1  # not retried on its own
    mentor = LaunchUser.instructor(locale="en")
    page = launch_placed(lms, mentor, custom)
    html = page.get_data(as_text=True)
    assert "Léa Tremblay" in html
    assert "cannot be graded in this course" in html
    assert f'name="row" value="{rows[0].id}"' in html
    # The teacher fixes the enrolment in the LMS, then sends again.
    lms.platform.not_gradable = set()
    again = post(lms, "/learn/retry", html, row=str(rows[0].id))
    assert again.status_code == 200
    assert "will be sent again" in again.get_data(as_text=True)
    rows = drain(app)
    assert [r.state for r in rows] == ["not_gradable", "delivered"]
    assert rows[1].timestamp == rows[0].timestamp
    assert lms.platform.scores[(1, learner.sub)]["scoreGiven"] == 1
    # Delivered now: nothing left to retry.
    refused = post(lms, "/learn/retry", again.get_data(as_text=True), row=str(rows[1].id))
    assert refused.status_code == 409


def test_permanent_refusal_fails_and_shows(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner(name="Sam Roy")
    lms.platform.faults.fail_next(1, status=403)
    complete(lms, module, custom, learner)
    rows = drain(app)
    assert [r.state for r in rows] == ["failed"] and rows[0].last_status == 403
    html = launch_placed(lms, LaunchUser.instructor(locale="en"), custom).get_data(as_text=True)
    assert "Not sent" in html and "Send again" in html


def test_mentor_retry_of_another_placements_row_is_refused(
    lms: Lms, app: Flask, module: Module
) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner()
    lms.platform.not_gradable = {learner.sub}
    complete(lms, module, custom, learner)
    (row,) = drain(app)
    other = place(lms)["custom"]
    html = launch_placed(lms, LaunchUser.instructor(), other, link="another-activity").get_data(
        as_text=True
    )
    refused = post(lms, "/learn/retry", html, row=str(row.id))
    assert refused.status_code == 409
    with get_db(app).session() as session:
        assert len(session.scalars(select(GradeOutboxRow)).all()) == 1


def test_class_view_uses_the_nrps_roster(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    done = LaunchUser.learner(sub="s-done", name="Chloé Done")
    waiting = LaunchUser.learner(sub="s-wait", name="Omar Waiting")
    mentor = LaunchUser.instructor(sub="t-1", name="Teacher One", locale="en")
    for user in (done, waiting, mentor):
        lms.platform.add_member(user)
    complete(lms, module, custom, done)
    drain(app)
    html = launch_placed(lms, mentor, custom).get_data(as_text=True)
    assert "from your platform&#39;s course roster" in html or "course roster" in html
    assert "Chloé Done" in html and "Omar Waiting" in html
    assert "Teacher One" not in html  # mentors are not learners
    assert "1 completed, 0 in progress, 1 not started." in html
    assert "Sent" in html


def test_class_view_falls_back_to_launches_when_nrps_is_refused(
    lms: Lms, app: Flask, module: Module
) -> None:
    custom = place(lms)["custom"]
    lms.platform.nrps_refuse = True
    launch_placed(lms, LaunchUser.learner(sub="s-1", name="Ana Launch"), custom)
    html = launch_placed(lms, LaunchUser.instructor(locale="en"), custom).get_data(as_text=True)
    assert "Ana Launch" in html
    assert "learners who opened this activity" in html


def publish_copy(app: Flask, version: str, changelog_en: str) -> None:
    """Record a new published version of the module (its 1.0.0 source, renumbered)."""
    import json

    from lti_tool.models import ContentVersion

    with get_db(app).session() as session:
        row = session.scalars(
            select(ContentVersion).where(
                ContentVersion.item_id == MODULE, ContentVersion.version == "1.0.0"
            )
        ).one()
        source = json.loads(row.source)
        source["files"]["module.yaml"]["version"] = version
        major, minor, patch = (int(p) for p in version.split("."))
        session.add(
            ContentVersion(
                item_id=MODULE,
                kind="module",
                version=version,
                major=major,
                minor=minor,
                patch=patch,
                sha256=f"{version:0>64}"[-64:],
                source=json.dumps(source),
                git_commit="0" * 40,
                changelog=json.dumps({"fr-CA": "Nouveau.", "en": changelog_en}),
            )
        )
    app.extensions["dataide_published"].forget_versions()


def test_moving_to_a_new_major_keeps_old_grades_and_attempts(
    lms: Lms, app: Flask, module: Module
) -> None:
    custom = place(lms, pin="1.0.0")["custom"]
    early = LaunchUser.learner(sub="early", name="Early Bird")
    complete(lms, module, custom, early)
    midway = LaunchUser.learner(sub="midway", name="Mid Way")
    launch_placed(lms, midway, custom)  # starts on 1.0.0 and finishes after the move
    publish_copy(app, "1.1.0", "Clearer examples.")
    publish_copy(app, "2.0.0", "New self-check questions.")
    mentor = LaunchUser.instructor(locale="en")
    html = launch_placed(lms, mentor, custom).get_data(as_text=True)
    assert "A newer version is published: 1.1.0" in html
    assert "A new major version is published: 2.0.0" in html
    assert "New self-check questions." in html
    moved = post(lms, "/learn/move", html, pin="2")
    assert moved.status_code == 200
    body = moved.get_data(as_text=True)
    assert "version in use: 2.0.0" in body and "pinned to 2" in body
    # A new learner starts on 2.0.0 and completes into a new column (resourceId @2).
    late = LaunchUser.learner(sub="late", name="Late Comer")
    page = complete(lms, module, custom, late)
    assert "version 2.0.0" in page
    finished = complete(lms, module, custom, midway)
    assert "version 1.0.0" in finished  # the attempt stays on the version it started
    rows = drain(app)
    assert [r.state for r in rows] == ["delivered"] * 3
    assert {(r.user_sub, r.resource_id) for r in rows} == {
        ("early", f"{MODULE}@1"),
        ("late", f"{MODULE}@2"),
        ("midway", f"{MODULE}@1"),
    }
    new_columns = [
        n for n, item in lms.platform.lineitems.items() if item.get("resourceId") == f"{MODULE}@2"
    ]
    assert len(new_columns) == 1
    assert lms.platform.scores[(1, early.sub)]["scoreGiven"] == 1  # the old column keeps it
    assert (new_columns[0], late.sub) in lms.platform.scores
    assert (1, late.sub) not in lms.platform.scores


def test_a_minor_release_keeps_attempts_on_their_version(lms: Lms, app: Flask) -> None:
    custom = place(lms)["custom"]  # pin "1": the newest 1.x
    learner = LaunchUser.learner(sub="steady")
    first = launch_placed(lms, learner, custom).get_data(as_text=True)
    assert "version 1.0.0" in first
    publish_copy(app, "1.1.0", "Clearer examples.")
    again = launch_placed(lms, learner, custom).get_data(as_text=True)
    assert "version 1.0.0" in again  # the attempt stays on the version it started
    newcomer = launch_placed(lms, LaunchUser.learner(sub="newcomer"), custom)
    assert "version 1.1.0" in newcomer.get_data(as_text=True)


def test_export_and_erase_cover_attempts_and_grades(lms: Lms, app: Flask, module: Module) -> None:
    from lti_tool.services.users import erase_user, export_user

    custom = place(lms)["custom"]
    learner = LaunchUser.learner(sub="law25")
    complete(lms, module, custom, learner)
    drain(app)
    with get_db(app).session() as session:
        exported = export_user(session, lms.platform.issuer, learner.sub)
        assert exported["attempts"][0]["item"] == MODULE
        assert exported["attempts"][0]["completed_at"] is not None
        assert exported["grades_sent"][0]["state"] == "delivered"
        erase_user(session, lms.platform.issuer, learner.sub)
        assert session.scalars(select(Attempt)).all() == []
        assert session.scalars(select(GradeOutboxRow)).all() == []
