"""A mentor places a module with Deep Linking; learners work through it inside the LMS;
completion is written to the grade outbox; the mentor sees the class."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import func, select

from lti_tool.content.model import Module
from lti_tool.db import get_db
from lti_tool.models import Attempt, GradeOutboxRow, Placement
from tests.functional.conftest import Lms, page_code
from tests.functional.platform import LaunchUser

DL = "LtiDeepLinkingRequest"
MODULE = "m01-maturite"


def token_of(html: str) -> str:
    return html.split('name="launch_token" value="')[1].split('"')[0]


def right_answers(module: Module) -> dict[str, list[str]]:
    """Form values that answer each question right (short answers: the first accepted)."""
    out: dict[str, list[str]] = {}
    for q in module.questions:
        if q.type in ("single", "multiple"):
            out[q.id] = [o.id for o in q.options if o.correct]
        elif q.type == "true_false":
            out[q.id] = ["true" if q.answer else "false"]
        else:
            out[q.id] = [dict(q.accepted)["fr-CA"][0]]
    return out


def wrong_answer(module: Module, qid: str) -> list[str]:
    q = next(q for q in module.questions if q.id == qid)
    if q.type in ("single", "multiple"):
        return [next(o.id for o in q.options if not o.correct)]
    if q.type == "true_false":
        return ["false" if q.answer else "true"]
    return ["certainement pas"]


def place(lms: Lms, item: str = MODULE, pin: str | None = None) -> dict[str, Any]:
    """A mentor picks ``item`` in the Deep Linking picker; returns the content item."""
    page = lms.launch(
        LaunchUser.instructor(locale="fr-CA"),
        login_kwargs={"message_type": DL},
        deep_linking_settings={"accept_multiple": True, "accept_types": ["ltiResourceLink"]},
    )
    assert page.status_code == 200, page_code(page)
    form = {"launch_token": token_of(page.get_data(as_text=True)), "item": item}
    if pin is not None:
        form[f"pin-{item}"] = pin
    answer = lms.client.post("/lti/deep-linking", data=form)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    jwt_value = answer.get_data(as_text=True).split('name="JWT" value="')[1].split('"')[0]
    items = lms.platform.decode_deep_linking_response(jwt_value)
    assert len(items) == 1
    return items[0]


def launch_placed(
    lms: Lms, user: LaunchUser, custom: dict[str, str], link: str | None = None, **kw: Any
) -> Any:
    login: dict[str, Any] = {}
    if link is not None:
        login["resource_link_id"] = link
    return lms.launch(user, login_kwargs=login, custom=custom, **kw)


def post(lms: Lms, path: str, html: str, **form: Any) -> Any:
    return lms.client.post(path, data={"launch_token": token_of(html), **form})


@pytest.fixture
def module(app: Flask) -> Module:
    return app.extensions["dataide_catalog"].modules[MODULE]


def test_picker_lists_the_catalog_and_filters(lms: Lms) -> None:
    page = lms.launch(
        LaunchUser.instructor(locale="en"),
        login_kwargs={"message_type": DL},
        deep_linking_settings={"accept_multiple": True, "accept_types": ["ltiResourceLink"]},
    )
    html = page.get_data(as_text=True)
    assert 'value="m01-maturite"' in html and 'value="x01-autodiagnostic"' in html
    assert 'value="b01-virage-amorce"' not in html  # badges are not placed as activities
    assert "version 1.0.0" in html
    filtered = post(lms, "/lti/deep-linking", html, action="filter", kind="experiment")
    body = filtered.get_data(as_text=True)
    assert 'value="x01-autodiagnostic"' in body and 'value="m01-maturite"' not in body
    searched = post(lms, "/lti/deep-linking", html, action="filter", q="cybersecurite")
    found = re.findall(r'name="item" value="([a-z0-9-]+)"', searched.get_data(as_text=True))
    assert set(found) - {"overview"} == {"m03-cyber", "x03-cyber"}


def test_deep_linking_item_carries_keys_and_line_item(lms: Lms) -> None:
    item = place(lms, pin="1.0.0")
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == "http://127.0.0.1:5999/lti/launch"
    custom = item["custom"]
    assert custom["dataide_item"] == MODULE and custom["dataide_pin"] == "1.0.0"
    assert re.fullmatch(r"[0-9a-f-]{36}", custom["dataide_dl"])
    line_item = item["lineItem"]
    assert line_item["scoreMaximum"] == 1
    assert line_item["resourceId"] == f"{MODULE}@1"
    assert line_item["tag"] == "dataide-completion"
    assert line_item["label"]


def test_learner_completes_a_module(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner(locale="fr-CA")
    page = launch_placed(lms, learner, custom)
    assert page.status_code == 200, page_code(page)
    html = page.get_data(as_text=True)
    assert str(escape(module.title.get("fr-CA"))) in html
    assert str(escape(module.objectives[0].text.get("fr-CA"))) in html
    assert 'aria-current="step"' in html
    answers = right_answers(module)
    qids = [q.id for q in module.questions if q.counts]
    # A wrong answer: feedback, nothing completed, no grade.
    wrong = post(lms, "/learn/answer", html, question=qids[0], answer=wrong_answer(module, qids[0]))
    assert wrong.status_code == 200
    assert "is-incorrect" in wrong.get_data(as_text=True)
    html = wrong.get_data(as_text=True)
    for qid in qids:
        answered = post(lms, "/learn/answer", html, question=qid, answer=answers[qid])
        assert answered.status_code == 200
        html = answered.get_data(as_text=True)
        assert "Bonne réponse." in html or "Right answer." in html
    assert "Module terminé." in html or "Module completed." in html
    with get_db(app).session() as session:
        attempt = session.scalars(select(Attempt)).one()
        assert attempt.completed_at is not None and attempt.version == "1.0.0"
        rows = session.scalars(select(GradeOutboxRow)).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.score_given, row.score_maximum) == (1.0, 1.0)
        assert (row.activity_progress, row.grading_progress) == ("Completed", "FullyGraded")
        assert row.user_sub == learner.sub and row.resource_id == f"{MODULE}@1"
        assert row.timestamp.startswith(attempt.completed_at.isoformat()[:19])
    # Answering again after completion sends nothing more: completion never goes back.
    again = post(lms, "/learn/answer", html, question=qids[0], answer=wrong_answer(module, qids[0]))
    assert again.status_code == 200
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(GradeOutboxRow)) == 1
        assert session.scalars(select(Attempt)).one().completed_at is not None


def test_progress_resumes_where_the_learner_left(lms: Lms, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner()
    html = launch_placed(lms, learner, custom).get_data(as_text=True)
    third = module.sections[2].id
    moved = post(lms, "/learn/section", html, section=third)
    assert f'value="{third}" class="link-button" aria-current="step"' in moved.get_data(
        as_text=True
    )
    relaunched = launch_placed(lms, learner, custom).get_data(as_text=True)
    assert f'value="{third}" class="link-button" aria-current="step"' in relaunched


def test_course_copy_creates_its_own_placement(lms: Lms, app: Flask) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner()
    assert launch_placed(lms, learner, custom).status_code == 200
    copy = launch_placed(lms, learner, custom, link="copied-course-link")
    assert copy.status_code == 200
    with get_db(app).session() as session:
        placements = session.scalars(select(Placement)).all()
        assert len(placements) == 2
        assert {p.item_id for p in placements} == {MODULE}
        assert len({p.resource_link_pk for p in placements}) == 2


@pytest.mark.parametrize(
    ("custom", "code"),
    [
        ({"dataide_item": "m99-inconnu"}, "item_unknown"),
        ({"dataide_item": "../etc"}, "item_unknown"),
        ({"dataide_item": MODULE, "dataide_pin": "7"}, "item_not_published"),
        ({"dataide_item": MODULE, "dataide_pin": "not a pin"}, "pin_invalid"),
    ],
)
def test_unknown_or_unpublished_items_get_a_clear_page(
    lms: Lms, custom: dict[str, str], code: str
) -> None:
    page = launch_placed(lms, LaunchUser.learner(locale="en"), custom)
    assert page.status_code == 404
    assert page_code(page) == code


def test_mentor_sees_the_class(lms: Lms, module: Module) -> None:
    custom = place(lms)["custom"]
    learner = LaunchUser.learner(sub="learner-42", name="Awa Diallo")
    launch_placed(lms, learner, custom)
    page = launch_placed(lms, LaunchUser.instructor(locale="en"), custom)
    assert page.status_code == 200, page_code(page)
    html = page.get_data(as_text=True)
    assert "Awa Diallo" in html
    assert "In progress" in html
    assert "version in use: 1.0.0" in html


def test_learner_cannot_use_mentor_actions(lms: Lms) -> None:
    custom = place(lms)["custom"]
    html = launch_placed(lms, LaunchUser.learner(), custom).get_data(as_text=True)
    for path in ("/learn/class", "/learn/retry", "/learn/move", "/learn/preview"):
        refused = post(lms, path, html, row="1", pin="1")
        assert refused.status_code == 403, path
        assert page_code(refused) == "forbidden"


def test_expired_launch_keeps_what_the_learner_typed(lms: Lms, module: Module) -> None:
    custom = place(lms)["custom"]
    html = launch_placed(lms, LaunchUser.learner(locale="en"), custom).get_data(as_text=True)
    short = next(q for q in module.questions if q.type == "short_text")
    lms.app.extensions["dataide_store"].delete(
        "launch:" + lms.app.extensions["dataide_lti"].tokens.resume(token_of(html)).launch_id
    )
    answer = post(lms, "/learn/answer", html, question=short.id, answer="ma réponse <b>")
    assert answer.status_code == 401
    assert page_code(answer) == "launch_token_expired"
    body = answer.get_data(as_text=True)
    assert "<samp>ma réponse &lt;b&gt;</samp>" in body


def test_mentor_tries_the_module_without_an_attempt(lms: Lms, app: Flask, module: Module) -> None:
    custom = place(lms)["custom"]
    html = launch_placed(lms, LaunchUser.instructor(locale="en"), custom).get_data(as_text=True)
    page = post(lms, "/learn/preview", html)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "not saved or graded" in body
    q = next(q for q in module.questions if q.counts)
    checked = post(lms, "/learn/answer", body, question=q.id, answer=right_answers(module)[q.id])
    assert "Right answer." in checked.get_data(as_text=True)
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 0
        assert session.scalar(select(func.count()).select_from(GradeOutboxRow)) == 0


def test_placed_experiment_shows_its_instructions_and_rubric(lms: Lms, app: Flask) -> None:
    item = place(lms, item="x01-autodiagnostic")
    assert item["lineItem"]["tag"] == "dataide-rubric"
    experiment = app.extensions["dataide_catalog"].experiments["x01-autodiagnostic"]
    assert item["lineItem"]["scoreMaximum"] == experiment.rubric.total_points
    page = launch_placed(lms, LaunchUser.learner(locale="en"), item["custom"])
    assert page.status_code == 200, page_code(page)
    html = page.get_data(as_text=True)
    assert str(escape(experiment.title.get("en"))) in html
    assert str(escape(experiment.rubric.criteria[0].title.get("en"))) in html
    mentor = launch_placed(lms, LaunchUser.instructor(locale="en"), item["custom"])
    assert "version in use: 1.0.0" in mentor.get_data(as_text=True)
