"""A learner working through a module: attempts, sections, self-checks, completion.

An attempt stays on the exact version it started until it is completed; completion is
written with its grade (an outbox row) in one transaction and never goes back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.content.model import Module
from lti_tool.domain import grades as g
from lti_tool.domain.launch import LaunchContext
from lti_tool.domain.progress import (
    AnswerRecord,
    Progress,
    Summary,
    Verdict,
    check_answer,
    resume_section,
    summarize,
)
from lti_tool.models import Attempt, utcnow

from .grades import GradeSpec, enqueue_score, remember_launch_line_item
from .placements import PlacementError, PlacementView, resolve_version
from .published import PublishedContent, PublishedVersion


@dataclass(frozen=True)
class ModuleState:
    """What a learner's module page shows."""

    module: Module
    attempt_pk: int
    progress: Progress
    summary: Summary
    section: str
    completed: bool
    #: The version the placement serves now (may be newer than the attempt's).
    serving: PublishedVersion


def attempt_progress(row: Attempt) -> Progress:
    answers: dict[str, Any] = json.loads(row.answers or "{}")
    return Progress(
        tuple(json.loads(row.sections_seen or "[]")),
        {
            qid: AnswerRecord(bool(a.get("correct")), int(a.get("tries", 0)))
            for qid, a in answers.items()
        },
    )


def _encode(progress: Progress) -> tuple[str, str]:
    answers = {
        qid: {"correct": rec.correct, "tries": rec.tries} for qid, rec in progress.answers.items()
    }
    return json.dumps(list(progress.sections_seen)), json.dumps(answers, sort_keys=True)


def _module(session: Session, published: PublishedContent, item_id: str, version: str) -> Module:
    item = published.item(session, item_id, version)
    if not isinstance(item, Module):
        raise PlacementError("item_not_published", f"{item_id}@{version} is not a module")
    return item


def _attempt(
    session: Session, launch: LaunchContext, placement: PlacementView, serving: PublishedVersion
) -> Attempt:
    assert launch.user_pk is not None
    mine = session.scalars(
        select(Attempt).where(
            Attempt.user_pk == launch.user_pk,
            Attempt.resource_link_pk == placement.resource_link_pk,
        )
    ).all()
    # An attempt stays on the version it started until it is completed, even when the
    # placement moved to a new MAJOR meanwhile; a completed one stays the learner's (its
    # grade is in its MAJOR's column). Newcomers start on the served version.
    unfinished = [a for a in mine if a.completed_at is None]
    if unfinished:
        return max(unfinished, key=lambda a: a.major)
    row = next((a for a in mine if a.major == serving.major), None)
    if row is None and mine:
        row = max(mine, key=lambda a: a.major)
    if row is not None:
        return row
    query = select(Attempt).where(
        Attempt.user_pk == launch.user_pk,
        Attempt.resource_link_pk == placement.resource_link_pk,
        Attempt.major == serving.major,
    )
    try:
        with session.begin_nested():
            row = Attempt(
                user_pk=launch.user_pk,
                resource_link_pk=placement.resource_link_pk,
                item_id=placement.item_id,
                version=str(serving.version),
                major=serving.major,
            )
            session.add(row)
    except IntegrityError:  # two tabs opening the module at once
        row = session.scalars(query).one()
    # The gradebook column of this MAJOR, when the platform named it in the launch.
    remember_launch_line_item(
        session, launch, placement.resource_link_pk, g.resource_id(placement.item_id, serving.major)
    )
    session.commit()
    return row


def _state(
    module: Module, row: Attempt, serving: PublishedVersion, section: str | None = None
) -> ModuleState:
    progress = attempt_progress(row)
    return ModuleState(
        module=module,
        attempt_pk=row.id,
        progress=progress,
        summary=summarize(module, progress),
        section=section or resume_section(module, row.current_section, progress.sections_seen),
        completed=row.completed_at is not None,
        serving=serving,
    )


def open_module(
    session: Session,
    published: PublishedContent,
    launch: LaunchContext,
    placement: PlacementView,
    section: str | None = None,
) -> ModuleState:
    """The learner's attempt on this placement, started if new, on ``section`` (else where
    they left). Marks the section seen. Commits."""
    serving = resolve_version(session, published, placement)
    row = _attempt(session, launch, placement, serving)
    module = _module(session, published, row.item_id, row.version)
    ids = [s.id for s in module.sections]
    target = (
        section
        if section in ids
        else resume_section(module, row.current_section, attempt_progress(row).sections_seen)
    )
    progress = attempt_progress(row).with_section(target)
    try:
        _save(session, row, progress, current_section=target)
        session.commit()
    except ConcurrentUpdate:
        session.refresh(row)  # another tab moved on: show this section, keep theirs
    return _state(module, row, serving, target)


def preview_module(
    session: Session,
    published: PublishedContent,
    placement: PlacementView,
    section: str | None = None,
) -> ModuleState:
    """The module as the placement serves it, for a mentor: no attempt, nothing saved."""
    serving = resolve_version(session, published, placement)
    module = _module(session, published, placement.item_id, str(serving.version))
    ids = [s.id for s in module.sections]
    target = section if section in ids else (ids[0] if ids else "")
    progress = Progress((target,))
    return ModuleState(
        module=module,
        attempt_pk=0,
        progress=progress,
        summary=summarize(module, progress),
        section=target,
        completed=False,
        serving=serving,
    )


class ConcurrentUpdate(Exception):
    """The attempt changed meanwhile (another tab); the caller may try again."""


def _save(session: Session, row: Attempt, progress: Progress, **values: Any) -> None:
    seen, answers = _encode(progress)
    if (
        seen == row.sections_seen
        and answers == row.answers
        and all(getattr(row, k) == v for k, v in values.items())
    ):
        session.rollback()
        return
    now = utcnow()
    result = session.execute(
        update(Attempt)
        .where(Attempt.id == row.id, Attempt.updated_at == row.updated_at)
        .values(sections_seen=seen, answers=answers, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ConcurrentUpdate(str(row.id))
    row.sections_seen, row.answers, row.updated_at = seen, answers, now
    for key, value in values.items():
        setattr(row, key, value)


@dataclass(frozen=True)
class AnswerOutcome:
    state: ModuleState
    question_id: str
    verdict: Verdict
    #: Set when this answer completed the module.
    just_completed: bool


def answer_question(
    session: Session,
    published: PublishedContent,
    launch: LaunchContext,
    placement: PlacementView,
    question_id: str,
    values: Sequence[str],
) -> AnswerOutcome:
    """Check an answer, record it, and complete the module (with its grade) when the
    pass ratio is reached. Commits. Raises KeyError for a question the module lacks."""
    for _ in range(3):
        serving = resolve_version(session, published, placement)
        row = _attempt(session, launch, placement, serving)
        module = _module(session, published, row.item_id, row.version)
        question = next((q for q in module.questions if q.id == question_id), None)
        if question is None:
            raise KeyError(question_id)
        verdict = check_answer(question, values, launch.locale)
        progress = attempt_progress(row).with_answer(question_id, verdict)
        section = next(
            (s.id for s in module.sections if question_id in _section_questions(module, s.id)),
            row.current_section,
        )
        summary = summarize(module, progress)
        completes = summary.passed and row.completed_at is None
        values_to_set: dict[str, Any] = {}
        if completes:
            values_to_set["completed_at"] = utcnow()
        try:
            _save(session, row, progress, **values_to_set)
        except ConcurrentUpdate:
            continue
        if completes:
            enqueue_score(
                session,
                launch,
                row.id,
                GradeSpec(
                    resource_id=g.resource_id(module.id, module.version.major),
                    tag=g.COMPLETION_TAG,
                    label=module.title.get("fr-CA"),
                    score_given=1.0,
                    score_maximum=1.0,
                    activity_progress=g.ACTIVITY_COMPLETED,
                    grading_progress=g.GRADING_FULLY_GRADED,
                    graded_at=values_to_set["completed_at"],
                ),
            )
        session.commit()
        return AnswerOutcome(_state(module, row, serving, section), question_id, verdict, completes)
    raise ConcurrentUpdate("attempt kept changing")


def _section_questions(module: Module, section_id: str) -> set[str]:
    """Question ids whose ``::: self-check`` block sits in the section (French body)."""
    return set(module_question_sections(module).get(section_id, ()))


def module_question_sections(module: Module) -> dict[str, tuple[str, ...]]:
    """Section id -> ids of the questions placed in it, from the French body's blocks."""
    body = module.body("fr-CA") or (module.bodies[0] if module.bodies else None)
    found: dict[str, list[str]] = {}
    current = ""
    if body is None:
        return {}
    for line in body.markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("## ") and "{#" in stripped:
            current = stripped.rsplit("{#", 1)[1].rstrip("}").strip()
        elif stripped.startswith("::: self-check"):
            parts = stripped.split()
            if len(parts) >= 3:
                found.setdefault(current, []).append(parts[2])
    return {k: tuple(v) for k, v in found.items()}
