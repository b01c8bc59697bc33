"""Self-check answers and module progress: pure rules (no I/O, no clock).

A question is answered right once and stays right: a learner may try again after a wrong
answer, and completion, once reached, never goes back.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class _Option(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def correct(self) -> bool: ...


class Question(Protocol):
    """What grading needs of a content question (``lti_tool.content.model.Question``)."""

    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def counts(self) -> bool: ...

    @property
    def answer(self) -> bool | None: ...

    @property
    def options(self) -> Sequence[_Option]: ...

    @property
    def accepted(self) -> Sequence[tuple[str, Sequence[str]]]: ...


class _Section(Protocol):
    @property
    def id(self) -> str: ...


class Module(Protocol):
    """What progress needs of a module (``lti_tool.content.model.Module``)."""

    @property
    def pass_ratio(self) -> float: ...

    @property
    def questions(self) -> Sequence[Question]: ...

    @property
    def sections(self) -> Sequence[_Section]: ...


RIGHT = "correct"
PARTIAL = "partial"
WRONG = "incorrect"
EMPTY = "empty"

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
#: JavaScript's ``\s``: self-check.js in the preview and this function must agree.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_COMBINING = re.compile("[\u0300-\u036f]")
_SPACES = re.compile(f"[{_JS_SPACE}]+")
_EDGES = re.compile(f"^[{_JS_SPACE}\"'«»“”„]+|[{_JS_SPACE}\"'«»“”„.!?;:,]+\\Z")


def normalize_answer(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a short answer; the same rules as
    ``normalize`` in static/js/self-check.js (the preview checks answers in the browser)."""
    value = _COMBINING.sub("", unicodedata.normalize("NFD", str(text or "").lower()))
    value = _SPACES.sub(" ", value.translate(_QUOTES))
    return _EDGES.sub("", value)


@dataclass(frozen=True)
class Verdict:
    """What a learner's answer to one question is worth, and which feedback to show."""

    result: str
    #: Option ids chosen (choice questions), for per-option feedback.
    chosen: tuple[str, ...] = ()


def check_answer(question: Question, values: Sequence[str], lang: str) -> Verdict:
    """Grade ``values`` (form values of the question) against ``question``'s key."""
    given = [v for v in (str(x).strip() for x in values) if v]
    if not given:
        return Verdict(EMPTY)
    if question.type in ("single", "multiple"):
        known = {o.id for o in question.options}
        chosen = tuple(dict.fromkeys(v for v in given if v in known))
        if not chosen:
            return Verdict(EMPTY)
        if question.type == "single":
            chosen = chosen[:1]
        correct = {o.id for o in question.options if o.correct}
        right = sum(1 for c in chosen if c in correct)
        if set(chosen) == correct:
            return Verdict(RIGHT, chosen)
        return Verdict(PARTIAL if right else WRONG, chosen)
    if question.type == "true_false":
        if given[0] not in ("true", "false"):
            return Verdict(EMPTY)
        ok = (given[0] == "true") == bool(question.answer)
        return Verdict(RIGHT if ok else WRONG, (given[0],))
    accepted = dict(question.accepted)
    candidates = accepted.get(lang) or accepted.get("fr-CA") or ()
    answer = normalize_answer(given[0])
    if not answer:
        return Verdict(EMPTY)
    ok = any(normalize_answer(a) == answer for a in candidates)
    return Verdict(RIGHT if ok else WRONG)


@dataclass(frozen=True)
class AnswerRecord:
    correct: bool
    tries: int


@dataclass(frozen=True)
class Progress:
    """Where a learner is in a module version."""

    sections_seen: tuple[str, ...] = ()
    answers: Mapping[str, AnswerRecord] = field(default_factory=dict)

    def with_section(self, section_id: str) -> Progress:
        if section_id in self.sections_seen:
            return self
        return Progress((*self.sections_seen, section_id), self.answers)

    def with_answer(self, question_id: str, verdict: Verdict) -> Progress:
        if verdict.result == EMPTY:
            return self
        before = self.answers.get(question_id)
        correct = verdict.result == RIGHT or (before is not None and before.correct)
        tries = (before.tries if before else 0) + 1
        answers = dict(self.answers)
        answers[question_id] = AnswerRecord(correct, tries)
        return Progress(self.sections_seen, answers)


@dataclass(frozen=True)
class Summary:
    sections_total: int
    sections_seen: int
    counting_total: int
    counting_right: int
    needed: int
    passed: bool


def counting_questions(module: Module) -> tuple[Question, ...]:
    return tuple(q for q in module.questions if q.counts)


def needed_right(module: Module) -> int:
    """How many counting questions must be right to complete (ceil of the ratio)."""
    total = len(counting_questions(module))
    # Decimal of the ratio as written (0.6 is exactly 0.6): 0.6 x 5 needs 3, not 4.
    needed = math.ceil(Decimal(str(module.pass_ratio)) * total)
    return min(total, max(0, needed))


def summarize(module: Module, progress: Progress) -> Summary:
    counting = counting_questions(module)
    right = sum(
        1 for q in counting if (rec := progress.answers.get(q.id)) is not None and rec.correct
    )
    section_ids = {s.id for s in module.sections}
    seen = sum(1 for s in progress.sections_seen if s in section_ids)
    needed = needed_right(module)
    return Summary(
        sections_total=len(module.sections),
        sections_seen=seen,
        counting_total=len(counting),
        counting_right=right,
        needed=needed,
        passed=right >= needed,
    )


def resume_section(module: Module, current: str | None, seen: Iterable[str]) -> str:
    """The section a returning learner lands on: where they were, else the first unseen."""
    ids = [s.id for s in module.sections]
    if current in ids:
        return str(current)
    seen_set = set(seen)
    return next((s for s in ids if s not in seen_set), ids[0] if ids else "")
