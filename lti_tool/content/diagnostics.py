"""Diagnostics of the content checker: stable codes, positions, three output formats."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Position:
    line: int
    col: int


#: Every code the checker can report: (severity, short title). Codes are stable: tools
#: and authors rely on them; never reuse a retired code for something else.
CODES: dict[str, tuple[str, str]] = {
    "C001": (ERROR, "YAML syntax error"),
    "C002": (ERROR, "YAML anchor, alias or merge key"),
    "C003": (ERROR, "duplicate key"),
    "C004": (ERROR, "unknown key"),
    "C005": (ERROR, "missing required field"),
    "C006": (ERROR, "wrong type"),
    "C007": (ERROR, "value not allowed"),
    "C008": (ERROR, "YAML 1.1 boolean where text is expected"),
    "C009": (ERROR, "id is not a slug"),
    "C010": (ERROR, "id used twice"),
    "C011": (ERROR, "folder name differs from id"),
    "C012": (ERROR, "translation missing"),
    "C013": (ERROR, "version is not SemVer"),
    "C014": (ERROR, "malformed reference"),
    "C015": (ERROR, "reference to a missing item"),
    "C016": (ERROR, "no version satisfies the reference"),
    "C017": (ERROR, "body file missing"),
    "C018": (ERROR, "body front matter wrong"),
    "C019": (ERROR, "section headings differ from sections"),
    "C020": (ERROR, "unknown block"),
    "C021": (ERROR, "self-check block names an unknown question"),
    "C022": (ERROR, "question not placed exactly once"),
    "C023": (ERROR, "language bodies differ in structure"),
    "C024": (ERROR, "single-choice question needs exactly one correct option"),
    "C025": (ERROR, "rubric levels not ascending from 0"),
    "C026": (ERROR, "total_points differs from the rubric"),
    "C027": (ERROR, "pass threshold out of range"),
    "C028": (ERROR, "image without alt text"),
    "C029": (ERROR, "image file missing"),
    "C030": (ERROR, "link target not found"),
    "C031": (ERROR, "external link not https"),
    "C032": (ERROR, "content changed without a version bump"),
    "C033": (ERROR, "assessment changed without a MAJOR bump"),
    "C034": (ERROR, "unclosed block"),
    "C035": (ERROR, "changelog does not start with this version"),
    "C036": (ERROR, "badge rule not valid"),
    "C037": (ERROR, "badge image missing or unsafe"),
    "C038": (ERROR, "heading without id or of the wrong level"),
    "C039": (ERROR, "experiment block names another item"),
    "C040": (ERROR, "id used twice inside the item"),
    "C041": (WARNING, "section minutes do not add up to the duration"),
    "C042": (WARNING, "French and English bodies differ a lot in length"),
}


#: Characters that end a line (``str.splitlines``): a value quoted in a message (a key
#: written "\n", say) is escaped so that every diagnostic stays on one line.
_LINE_BREAKS = {
    ord(c): c.encode("unicode_escape").decode("ascii")
    for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
}


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, sortable by file and position."""

    path: str
    line: int
    col: int
    code: str
    message: str

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    @classmethod
    def at(cls, code: str, path: str, position: Position, message: str) -> Diagnostic:
        if code not in CODES:
            raise KeyError(f"unregistered diagnostic code {code}")
        return cls(path, position.line, position.col, code, message.translate(_LINE_BREAKS))

    def text(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message} [{self.code}]"

    def github(self) -> str:
        level = "error" if self.severity == ERROR else "warning"
        message = self.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return (
            f"::{level} file={self.path},line={self.line},col={self.col},"
            f"title={self.code}::{message}"
        )


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == ERROR for d in diagnostics)


def format_diagnostics(diagnostics: list[Diagnostic], fmt: str, item_count: int) -> str:
    """The checker's output in ``text``, ``github`` or ``json`` format."""
    ordered = sorted(diagnostics)
    if fmt == "json":
        return json.dumps(
            [{**asdict(d), "severity": d.severity} for d in ordered], ensure_ascii=False, indent=2
        )
    errors = sum(1 for d in ordered if d.severity == ERROR)
    warnings = len(ordered) - errors
    lines = [d.github() if fmt == "github" else d.text() for d in ordered]
    if fmt == "text":
        summary = f"{item_count} items checked: {errors} error(s), {warnings} warning(s)"
        lines.append(summary if ordered else f"{item_count} items checked: all good")
    return "\n".join(lines)
