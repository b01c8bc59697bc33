"""The content as frozen dataclasses, built from validated files (no Flask, no database)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .versions import Reference, SemVer, parse_reference, parse_version


@dataclass(frozen=True)
class Text:
    """A human string in every language of its item."""

    values: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, raw: Mapping[str, Any], languages: tuple[str, ...]) -> Text:
        return cls(tuple((lang, str(raw[lang])) for lang in languages if lang in raw))

    def get(self, lang: str) -> str:
        """The text in ``lang``, else in French (always present)."""
        found = dict(self.values)
        return found.get(lang) or found.get("fr-CA", "")

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)


@dataclass(frozen=True)
class Option:
    id: str
    text: Text
    correct: bool
    feedback: Text


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    prompt: Text
    counts: bool = True
    objective: str | None = None
    options: tuple[Option, ...] = ()
    answer: bool | None = None
    accepted: tuple[tuple[str, tuple[str, ...]], ...] = ()
    feedback_correct: Text | None = None
    feedback_incorrect: Text | None = None


@dataclass(frozen=True)
class Section:
    id: str
    minutes: int
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Objective:
    id: str
    text: Text


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    date: str
    text: Text


@dataclass(frozen=True)
class Body:
    """A module body in one language: Markdown without its front matter."""

    lang: str
    markdown: str
    #: Line of the file where ``markdown`` starts (after the front matter).
    first_line: int


@dataclass(frozen=True)
class Module:
    id: str
    version: SemVer
    status: str
    languages: tuple[str, ...]
    title: Text
    summary: Text
    learning_minutes: int
    self_check_minutes: int
    objectives: tuple[Objective, ...]
    keypoints: tuple[Text, ...]
    sections: tuple[Section, ...]
    pass_ratio: float
    questions: tuple[Question, ...]
    bodies: tuple[Body, ...]
    prerequisites: tuple[Reference, ...] = ()
    linked_experiment: Reference | None = None
    audience: tuple[str, ...] = ()
    changelog: tuple[ChangelogEntry, ...] = ()
    source_path: str = ""
    kind: str = field(default="module", init=False)

    def body(self, lang: str) -> Body | None:
        return next((b for b in self.bodies if b.lang == lang), None)


@dataclass(frozen=True)
class Deliverable:
    id: str
    type: str
    required: bool
    prompt: Text
    min_words: int | None = None
    max_words: int | None = None
    accept: tuple[str, ...] = ()
    max_mb: int | None = None
    url_schemes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Level:
    id: str
    points: int
    text: Text


@dataclass(frozen=True)
class Criterion:
    id: str
    title: Text
    levels: tuple[Level, ...]
    description: Text | None = None

    @property
    def max_points(self) -> int:
        return max((lvl.points for lvl in self.levels), default=0)


@dataclass(frozen=True)
class Rubric:
    criteria: tuple[Criterion, ...]
    total_points: int
    pass_points: int


@dataclass(frozen=True)
class Experiment:
    id: str
    version: SemVer
    status: str
    languages: tuple[str, ...]
    title: Text
    summary: Text
    weeks: int
    effort_hours: int
    team_based: bool
    instructions: Text
    deliverables: tuple[Deliverable, ...]
    rubric: Rubric
    feedback_required: bool
    linked_modules: tuple[Reference, ...] = ()
    changelog: tuple[ChangelogEntry, ...] = ()
    source_path: str = ""
    kind: str = field(default="experiment", init=False)


@dataclass(frozen=True)
class Rule:
    """A node of a badge's rule tree; ``type`` names an entry of the rule registry."""

    type: str
    args: tuple[tuple[str, Any], ...] = ()
    children: tuple[Rule, ...] = ()

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)


@dataclass(frozen=True)
class BadgeClass:
    id: str
    version: SemVer
    status: str
    languages: tuple[str, ...]
    name: Text
    description: Text
    image_file: str
    image_alt: Text
    achievement_type: str
    issuer: str
    narrative: Text
    rule: Rule
    tags: tuple[str, ...] = ()
    changelog: tuple[ChangelogEntry, ...] = ()
    source_path: str = ""
    kind: str = field(default="badge", init=False)


@dataclass(frozen=True)
class Issuer:
    id: str
    version: SemVer
    name: Text
    description: Text
    url: str
    email: str


Item = Module | Experiment | BadgeClass


@dataclass(frozen=True)
class Catalog:
    """Every item of the content tree, by id. Immutable once loaded."""

    modules: Mapping[str, Module]
    experiments: Mapping[str, Experiment]
    badges: Mapping[str, BadgeClass]
    issuer: Issuer | None

    def item(self, item_id: str) -> Item | None:
        return (
            self.modules.get(item_id) or self.experiments.get(item_id) or self.badges.get(item_id)
        )

    def items(self) -> list[Item]:
        return [*self.modules.values(), *self.experiments.values(), *self.badges.values()]


# -- builders (input already validated by schema.py) ---------------------------------------


def _langs(raw: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(raw["languages"])


def _changelog(raw: Mapping[str, Any], langs: tuple[str, ...]) -> tuple[ChangelogEntry, ...]:
    return tuple(
        ChangelogEntry(str(e["version"]), str(e["date"]), Text.of(e, langs))
        for e in raw.get("changelog", [])
    )


def _common(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The fields every item kind shares (id, version, status, languages, changelog)."""
    langs = _langs(raw)
    version = parse_version(raw["version"])
    assert version is not None, "built only from validated files"
    return {
        "id": raw["id"],
        "version": version,
        "status": raw["status"],
        "languages": langs,
        "changelog": _changelog(raw, langs),
        "source_path": source,
    }


def _refs(values: Any) -> tuple[Reference, ...]:
    refs = (parse_reference(v) for v in values or [])
    return tuple(r for r in refs if r is not None)


def _question(raw: Mapping[str, Any], langs: tuple[str, ...]) -> Question:
    feedback = raw.get("feedback") or {}
    accepted = raw.get("accepted") or {}
    return Question(
        id=raw["id"],
        type=raw["type"],
        prompt=Text.of(raw["prompt"], langs),
        counts=bool(raw.get("counts", True)),
        objective=raw.get("objective"),
        options=tuple(
            Option(
                o["id"],
                Text.of(o, langs),
                bool(o.get("correct", False)),
                Text.of(o["feedback"], langs),
            )
            for o in raw.get("options") or []
        ),
        answer=raw.get("answer"),
        accepted=tuple((lang, tuple(str(a) for a in accepted.get(lang, []))) for lang in langs),
        feedback_correct=Text.of(feedback["correct"], langs) if "correct" in feedback else None,
        feedback_incorrect=(
            Text.of(feedback["incorrect"], langs) if "incorrect" in feedback else None
        ),
    )


def build_module(raw: Mapping[str, Any], bodies: tuple[Body, ...], source: str) -> Module:
    common = _common(raw, source)
    langs = common["languages"]
    prereq = raw.get("prerequisites") or {}
    linked = raw.get("linked_experiment")
    return Module(
        **common,
        title=Text.of(raw["title"], langs),
        summary=Text.of(raw["summary"], langs),
        learning_minutes=raw["duration"]["learning_minutes"],
        self_check_minutes=raw["duration"]["self_check_minutes"],
        objectives=tuple(Objective(o["id"], Text.of(o, langs)) for o in raw["objectives"]),
        keypoints=tuple(Text.of(k, langs) for k in raw["keypoints"]),
        sections=tuple(
            Section(s["id"], s["minutes"], tuple(s.get("objectives", []))) for s in raw["sections"]
        ),
        pass_ratio=float(raw["self_check"]["pass_ratio"]),
        questions=tuple(_question(q, langs) for q in raw["self_check"]["questions"]),
        bodies=bodies,
        prerequisites=_refs(prereq.get("modules")),
        linked_experiment=parse_reference(linked) if linked else None,
        audience=tuple(raw.get("audience", [])),
    )


def build_experiment(raw: Mapping[str, Any], source: str) -> Experiment:
    common = _common(raw, source)
    langs = common["languages"]
    rubric = raw["rubric"]
    return Experiment(
        **common,
        title=Text.of(raw["title"], langs),
        summary=Text.of(raw["summary"], langs),
        weeks=raw["period"]["weeks"],
        effort_hours=raw["period"]["effort_hours"],
        team_based=bool(raw.get("team_based", False)),
        instructions=Text.of(raw["instructions"], langs),
        deliverables=tuple(
            Deliverable(
                id=d["id"],
                type=d["type"],
                required=bool(d.get("required", True)),
                prompt=Text.of(d["prompt"], langs),
                min_words=(d.get("limits") or {}).get("min_words"),
                max_words=(d.get("limits") or {}).get("max_words"),
                accept=tuple(d.get("accept", [])),
                max_mb=d.get("max_mb"),
                url_schemes=tuple(d.get("url_schemes", [])),
            )
            for d in raw["deliverables"]
        ),
        rubric=Rubric(
            criteria=tuple(
                Criterion(
                    id=c["id"],
                    title=Text.of(c["title"], langs),
                    levels=tuple(
                        Level(lv["id"], lv["points"], Text.of(lv, langs)) for lv in c["levels"]
                    ),
                    description=Text.of(c["description"], langs) if c.get("description") else None,
                )
                for c in rubric["criteria"]
            ),
            total_points=rubric["total_points"],
            pass_points=rubric["pass_points"],
        ),
        feedback_required=bool(raw["grading"].get("feedback_required", False)),
        linked_modules=_refs(raw.get("linked_modules")),
    )


def build_badge(raw: Mapping[str, Any], rule: Rule, source: str) -> BadgeClass:
    common = _common(raw, source)
    langs = common["languages"]
    return BadgeClass(
        **common,
        name=Text.of(raw["name"], langs),
        description=Text.of(raw["description"], langs),
        image_file=raw["image"]["file"],
        image_alt=Text.of(raw["image"]["alt"], langs),
        achievement_type=raw.get("achievement_type", "Badge"),
        issuer=raw["issuer"],
        narrative=Text.of(raw["criteria"]["narrative"], langs),
        rule=rule,
        tags=tuple(raw.get("tags", [])),
    )


def build_issuer(raw: Mapping[str, Any]) -> Issuer:
    langs = _langs(raw)
    version = parse_version(raw["version"])
    assert version is not None
    return Issuer(
        id=raw["id"],
        version=version,
        name=Text.of(raw["name"], langs),
        description=Text.of(raw["description"], langs),
        url=raw["url"],
        email=raw["email"],
    )
