"""The Deep Linking picker's catalog: published items a mentor can place, and the
content items sent back to the platform for a selection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.content.model import Experiment, Module, Text
from lti_tool.content.versions import SemVer, parse_reference
from lti_tool.domain import grades as g
from lti_tool.domain.progress import normalize_answer
from lti_tool.models import ContentVersion

from .placements import DL_KEY, ITEM_KEY, PIN_KEY
from .published import PublishedContent

RUBRIC_TAG = "dataide-rubric"
KINDS = ("module", "experiment")


@dataclass(frozen=True)
class PickerItem:
    id: str
    kind: str
    status: str
    languages: tuple[str, ...]
    version: SemVer
    versions: tuple[SemVer, ...]
    title: Text
    summary: Text
    objectives: tuple[Text, ...]
    #: Modules: minutes of learning + self-check; experiments: weeks.
    minutes: int | None
    weeks: int | None
    effort_hours: int | None
    score_maximum: float
    tag: str

    def pins(self) -> list[tuple[str, str]]:
        """(pin, label) choices: each MAJOR's newest first, then every exact version."""
        majors = sorted({v.major for v in self.versions}, reverse=True)
        out = [(str(m), f"{m}.x") for m in majors]
        out += [(str(v), str(v)) for v in self.versions]
        return out


def picker_items(session: Session, published: PublishedContent) -> list[PickerItem]:
    """Placeable items (modules and experiments, not draft or retired), by title."""
    ids = session.scalars(
        select(ContentVersion.item_id).where(ContentVersion.kind.in_(KINDS)).distinct()
    ).all()
    items: list[PickerItem] = []
    for item_id in ids:
        versions = published.versions(session, item_id)
        if not versions:
            continue
        newest = versions[0]
        item = published.item(session, item_id, str(newest.version))
        if item is None or item.status in ("draft", "retired"):
            continue
        common: dict[str, Any] = {
            "id": item.id,
            "status": item.status,
            "languages": item.languages,
            "version": newest.version,
            "versions": tuple(v.version for v in versions),
            "title": item.title,
            "summary": item.summary,
        }
        if isinstance(item, Module):
            items.append(
                PickerItem(
                    kind="module",
                    objectives=tuple(o.text for o in item.objectives),
                    minutes=item.learning_minutes + item.self_check_minutes,
                    weeks=None,
                    effort_hours=None,
                    score_maximum=1.0,
                    tag=g.COMPLETION_TAG,
                    **common,
                )
            )
        elif isinstance(item, Experiment):
            items.append(
                PickerItem(
                    kind="experiment",
                    objectives=(),
                    minutes=None,
                    weeks=item.weeks,
                    effort_hours=item.effort_hours,
                    score_maximum=float(item.rubric.total_points),
                    tag=RUBRIC_TAG,
                    **common,
                )
            )
    items.sort(key=lambda i: (i.kind, i.id))
    return items


def filter_items(items: list[PickerItem], query: str, kind: str, lang: str) -> list[PickerItem]:
    """Items matching a free-text query (any language, accents ignored), a kind, a language."""
    words = normalize_answer(query).split()
    out = []
    for item in items:
        if kind in KINDS and item.kind != kind:
            continue
        if lang in ("fr-CA", "en") and lang not in item.languages:
            continue
        if words:
            texts = [item.id, *item.title.as_dict().values(), *item.summary.as_dict().values()]
            for objective in item.objectives:
                texts.extend(objective.as_dict().values())
            haystack = normalize_answer(" ".join(texts))
            if not all(w in haystack for w in words):
                continue
        out.append(item)
    return out


@dataclass(frozen=True)
class Choice:
    """One picked item, ready to become an ``ltiResourceLink``."""

    item: PickerItem
    pin: str
    title: str
    text: str
    custom: dict[str, str]
    resource_id: str
    label: str


def choose(item: PickerItem, pin: str, lang: str) -> Choice | None:
    """The content item for ``item`` at ``pin``; None when the pin selects nothing."""
    ref = parse_reference(f"{item.id}@{pin}")
    if ref is None:
        return None
    matching = [v for v in item.versions if ref.matches(v)]
    if not matching:
        return None
    major = max(matching).major
    title = item.title.get(lang)
    return Choice(
        item=item,
        pin=pin,
        title=title,
        text=item.summary.get(lang),
        # Lower-case keys that live in LMS courses for years: never rename them.
        custom={ITEM_KEY: item.id, PIN_KEY: pin, DL_KEY: str(uuid.uuid4())},
        resource_id=g.resource_id(item.id, major),
        label=title,
    )
