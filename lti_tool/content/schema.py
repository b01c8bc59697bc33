"""Declarative schemas of content files and the validator that reports with positions.

A spec is a small tree of checkers. The validator walks a :class:`Document` and reports
unknown keys (C004), missing fields (C005), wrong types (C006), values outside an
enumeration (C007), YAML 1.1 booleans where text is expected (C008), slugs (C009),
missing translations (C012), versions (C013) and reference syntax (C014).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic
from .versions import parse_reference, parse_version
from .yaml_source import Document, Path

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
LANGUAGES = ("fr-CA", "en")


@dataclass
class Ctx:
    doc: Document
    languages: tuple[str, ...]
    out: list[Diagnostic] = field(default_factory=list)

    def report(self, code: str, path: Path, message: str, key: bool = False) -> None:
        pos = self.doc.key_at(path) if key else self.doc.at(path)
        self.out.append(Diagnostic.at(code, self.doc.path, pos, message))


Check = Callable[[Ctx, Any, Path], None]


def _name(path: Path) -> str:
    parts: list[str] = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." + p if parts else p))
    return "".join(parts) or "file"


def _type_error(ctx: Ctx, path: Path, expected: str, value: Any) -> None:
    if path in ctx.doc.yaml11_booleans and expected == "text":
        ctx.report(
            "C008",
            path,
            f'{_name(path)}: YAML reads this as a boolean; quote it ("{_bool_word(value)}")',
        )
        return
    ctx.report("C006", path, f"{_name(path)}: expected {expected}, found {_kind(value)}")


def _bool_word(value: Any) -> str:
    return "yes" if value is True else "no"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def text(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        _type_error(ctx, path, "text", value)


def integer(low: int = 0, high: int = 10**6) -> Check:
    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            _type_error(ctx, path, "a whole number", value)
        elif not low <= value <= high:
            ctx.report("C007", path, f"{_name(path)}: {value} must be between {low} and {high}")

    return check


def number(low: float, high: float) -> Check:
    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            _type_error(ctx, path, "a number", value)
        elif not low <= value <= high:
            ctx.report("C007", path, f"{_name(path)}: {value} must be between {low} and {high}")

    return check


def boolean(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, bool):
        _type_error(ctx, path, "true or false", value)


def slug(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, str):
        _type_error(ctx, path, "text", value)
    elif not SLUG.match(value):
        ctx.report(
            "C009",
            path,
            f"{_name(path)} '{value}' is not a slug: use lowercase letters, digits and dashes",
        )


def enum(*allowed: str) -> Check:
    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if not isinstance(value, str):
            _type_error(ctx, path, "text", value)
        elif value not in allowed:
            ctx.report("C007", path, f"{_name(path)} '{value}' is not one of: {', '.join(allowed)}")

    return check


def const(expected: str) -> Check:
    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if value != expected:
            ctx.report("C007", path, f"{_name(path)} must be '{expected}'")

    return check


def version(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, str) or parse_version(value) is None:
        ctx.report("C013", path, f"{_name(path)} '{value}' is not a SemVer version such as 1.2.0")


def date(ctx: Ctx, value: Any, path: Path) -> None:
    if isinstance(value, dt.date):
        return
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
            return
        except ValueError:
            pass
    ctx.report("C006", path, f"{_name(path)}: expected a date YYYY-MM-DD")


def reference(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, str) or parse_reference(value) is None:
        ctx.report(
            "C014",
            path,
            f"{_name(path)} '{value}' is not a reference: write id@MAJOR (m01-maturite@1), "
            "an exact version (m01-maturite@1.2.0) or a range (m01-maturite@>=1.2,<2)",
        )


def languages(ctx: Ctx, value: Any, path: Path) -> None:
    if not isinstance(value, list) or not value:
        _type_error(ctx, path, "a list of languages", value)
        return
    for i, lang in enumerate(value):
        if lang not in LANGUAGES:
            ctx.report("C007", (*path, i), f"language '{lang}' is not one of fr-CA, en")
    if value[:1] != ["fr-CA"]:
        ctx.report("C007", path, "languages must start with fr-CA (French is required)")


def localized(ctx: Ctx, value: Any, path: Path) -> None:
    """A human string: one entry per language of the item."""
    if not isinstance(value, dict):
        _type_error(ctx, path, "a map of translations (fr-CA: ..., en: ...)", value)
        return
    _translations(ctx, value, path)


def _translations(ctx: Ctx, value: Mapping[str, Any], path: Path) -> None:
    for lang in ctx.languages:
        if lang not in value:
            ctx.report("C012", path, f"{_name(path)} has no {lang} text: add '{lang}: ...'")
        else:
            text(ctx, value[lang], (*path, lang))


def localized_list(ctx: Ctx, value: Any, path: Path) -> None:
    """Per language, a list of strings (accepted short answers)."""
    if not isinstance(value, dict):
        _type_error(ctx, path, "a map of lists per language", value)
        return
    for lang in ctx.languages:
        items = value.get(lang)
        if items is None:
            ctx.report("C012", path, f"{_name(path)} has no {lang} list")
        elif not isinstance(items, list) or not items:
            _type_error(ctx, (*path, lang), "a non-empty list", items)
        else:
            for i, item in enumerate(items):
                if not isinstance(item, str | int | float) or isinstance(item, bool):
                    _type_error(ctx, (*path, lang, i), "text", item)


def list_of(item: Check, min_items: int = 0) -> Check:
    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if not isinstance(value, list):
            _type_error(ctx, path, "a list", value)
            return
        if len(value) < min_items:
            ctx.report("C007", path, f"{_name(path)} needs at least {min_items} entries")
        for i, entry in enumerate(value):
            item(ctx, entry, (*path, i))

    return check


@dataclass(frozen=True)
class F:
    """A field of a mapping."""

    check: Check
    required: bool = True


def mapping(fields: Mapping[str, F], *, translated: bool = False) -> Check:
    """A mapping with these fields; ``translated`` also allows one key per language."""

    def check(ctx: Ctx, value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            _type_error(ctx, path, "a mapping", value)
            return
        for key, spec in fields.items():
            if key in value:
                spec.check(ctx, value[key], (*path, key))
            elif spec.required:
                ctx.report("C005", path, f"{_name(path)} is missing '{key}'")
        if translated:
            _translations(ctx, value, path)
        allowed = set(fields) | (set(ctx.languages) if translated else set())
        for key in value:
            if key not in allowed:
                hint = f" (allowed: {', '.join(sorted(allowed))})" if len(allowed) < 12 else ""
                ctx.report(
                    "C004", (*path, key), f"unknown key '{key}' in {_name(path)}{hint}", key=True
                )

    return check


def validate(doc: Document, spec: Check) -> list[Diagnostic]:
    """Diagnostics of ``doc`` against ``spec`` (languages read from the document)."""
    value = doc.value
    langs = value.get("languages") if isinstance(value, dict) else None
    ok_langs = tuple(lang for lang in langs if lang in LANGUAGES) if isinstance(langs, list) else ()
    ctx = Ctx(doc=doc, languages=ok_langs or LANGUAGES)
    spec(ctx, value, ())
    return ctx.out


# -- the specs -----------------------------------------------------------------------

STATUS = enum("draft", "pilot", "stable", "retired")

_COMMON: dict[str, F] = {
    "id": F(slug),
    "version": F(version),
    "status": F(STATUS),
    "languages": F(languages),
}
_AUTHORS = F(list_of(mapping({"name": F(text), "role": F(text, required=False)})), False)
_LICENSE = F(text, required=False)
_CHANGELOG = F(list_of(mapping({"version": F(version), "date": F(date)}, translated=True), 1))


def _common(kind: str) -> dict[str, F]:
    return {"schema": F(const(f"dataide/{kind}@1")), **_COMMON}


_FEEDBACK_PAIR = mapping({"correct": F(localized), "incorrect": F(localized)})
_OPTION = mapping(
    {"id": F(slug), "correct": F(boolean, False), "feedback": F(localized)}, translated=True
)
_QUESTION = mapping(
    {
        "id": F(slug),
        "type": F(enum("single", "multiple", "true_false", "short_text")),
        "objective": F(slug, False),
        "counts": F(boolean, False),
        "prompt": F(localized),
        "options": F(list_of(_OPTION, 2), False),
        "answer": F(boolean, False),
        "accepted": F(localized_list, False),
        "feedback": F(_FEEDBACK_PAIR, False),
    }
)

MODULE = mapping(
    {
        **_common("module"),
        "title": F(localized),
        "summary": F(localized),
        "duration": F(
            mapping(
                {"learning_minutes": F(integer(1, 600)), "self_check_minutes": F(integer(0, 120))}
            )
        ),
        "audience": F(list_of(slug), False),
        "prerequisites": F(
            mapping({"modules": F(list_of(reference), False), "equipment": F(localized, False)}),
            False,
        ),
        "objectives": F(list_of(mapping({"id": F(slug)}, translated=True), 2)),
        "keypoints": F(list_of(mapping({}, translated=True), 3)),
        "sections": F(
            list_of(
                mapping(
                    {
                        "id": F(slug),
                        "minutes": F(integer(1, 600)),
                        "objectives": F(list_of(slug), False),
                    }
                ),
                4,
            )
        ),
        "self_check": F(
            mapping({"pass_ratio": F(number(0.0, 1.0)), "questions": F(list_of(_QUESTION, 4))})
        ),
        "linked_experiment": F(reference, False),
        "authors": _AUTHORS,
        "license": _LICENSE,
        "changelog": _CHANGELOG,
    }
)

_DELIVERABLE = mapping(
    {
        "id": F(slug),
        "type": F(enum("text", "file", "link")),
        "required": F(boolean, False),
        "prompt": F(localized),
        "limits": F(
            mapping({"min_words": F(integer(0, 100000)), "max_words": F(integer(1, 100000))}),
            False,
        ),
        "accept": F(list_of(slug, 1), False),
        "max_mb": F(integer(1, 100), False),
        "url_schemes": F(list_of(enum("https", "http"), 1), False),
    }
)
_LEVEL = mapping({"id": F(slug), "points": F(integer(0, 1000))}, translated=True)
_CRITERION = mapping(
    {
        "id": F(slug),
        "title": F(localized),
        "description": F(localized, False),
        "levels": F(list_of(_LEVEL, 2)),
    }
)
EXPERIMENT = mapping(
    {
        **_common("experiment"),
        "title": F(localized),
        "summary": F(localized),
        "period": F(mapping({"weeks": F(integer(1, 52)), "effort_hours": F(integer(1, 500))})),
        "linked_modules": F(list_of(reference), False),
        "team_based": F(boolean, False),
        "instructions": F(localized),
        "deliverables": F(list_of(_DELIVERABLE, 1)),
        "rubric": F(
            mapping(
                {
                    "criteria": F(list_of(_CRITERION, 1)),
                    "total_points": F(integer(1, 10000)),
                    "pass_points": F(integer(0, 10000)),
                }
            )
        ),
        "grading": F(
            mapping({"mode": F(enum("instructor")), "feedback_required": F(boolean, False)})
        ),
        "authors": _AUTHORS,
        "license": _LICENSE,
        "changelog": _CHANGELOG,
    }
)


def _any_value(ctx: Ctx, value: Any, path: Path) -> None:
    """Badge rules are checked by the rule registry (rules.py)."""


BADGE = mapping(
    {
        **_common("badge"),
        "name": F(localized),
        "description": F(localized),
        "image": F(mapping({"file": F(text), "alt": F(localized)})),
        "achievement_type": F(enum("Badge", "Certificate", "Achievement"), False),
        "issuer": F(slug),
        "criteria": F(mapping({"narrative": F(localized), "rules": F(_any_value)})),
        "tags": F(list_of(slug), False),
        "authors": _AUTHORS,
        "license": _LICENSE,
        "changelog": _CHANGELOG,
    }
)

ISSUER = mapping(
    {
        **_common("issuer"),
        "name": F(localized),
        "description": F(localized),
        "url": F(text),
        "email": F(text),
    }
)
