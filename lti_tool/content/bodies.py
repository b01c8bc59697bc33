"""Structural checks of module bodies, line by line (Python-Markdown keeps no positions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic, Position

BLOCKS = ("callout", "caution", "example", "discussion", "instructor", "spoiler")
ARG_BLOCKS = ("self-check", "experiment")

_SECTION = re.compile(r"^##\s+(?P<title>.*?)\s*\{#(?P<id>[^}]*)\}\s*$")
_FENCE = re.compile(r"^:::\s*(?P<name>[^\s]*)\s*(?P<arg>[^\s]*)\s*(?P<extra>.*)$")
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]*)[^)]*\)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<href>[^)\s]*)[^)]*\)")
# Apostrophes, straight and typographic (U+2019), join French elisions (l'équipe).
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_WORD = re.compile("[^\\W\\d_](?:[\\w'\u2019-]*\\w)?")


@dataclass
class BodyScan:
    """What a body contains, with line numbers in its file."""

    sections: list[tuple[str, int]] = field(default_factory=list)
    self_checks: list[tuple[str, int, str | None]] = field(default_factory=list)
    experiments: list[tuple[str, int]] = field(default_factory=list)
    images: int = 0
    words: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Column of the id in each ``::: self-check`` / ``::: experiment`` line, by line.
    arg_cols: dict[int, int] = field(default_factory=dict)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the OS refuses the name (too long, say)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def split_front_matter(text: str) -> tuple[dict[str, str], str, int]:
    """Split ``---`` front matter from a body file.

    Returns ``(front matter, body, number of lines the front matter took)``: the count includes
    both ``---`` fences, so line ``n`` of ``body`` is line ``n + count`` of the file. A text that
    does not start with a ``---`` line (a leading BOM is ignored) has no front matter:
    ``({}, text, 0)``.

    Inside the fences each non-blank line is ``key: value`` (no YAML: the value is the text after
    the first colon, stripped, with one pair of matching surrounding quotes removed); lines
    starting with ``#`` are comments. Raises ``ValueError`` (message naming the file line) for an
    unclosed front matter, a line that is not ``key: value`` or a duplicate key.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return {}, text, 0
    meta: dict[str, str] = {}
    for index in range(1, len(lines)):
        line = lines[index].rstrip()
        if line == "---":
            return meta, "\n".join(lines[index + 1 :]), index + 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, colon, value = line.partition(":")
        key = key.strip()
        if not colon or not _FRONT_MATTER_KEY.fullmatch(key):
            raise ValueError(f"front matter line {index + 1}: expected 'key: value'")
        if key in meta:
            raise ValueError(f"front matter line {index + 1}: duplicate key {key!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        meta[key] = value
    raise ValueError("front matter: no closing '---' line")


def scan_body(text: str, path: str, item_dir: Path, first_line: int) -> BodyScan:
    """Scan ``text`` (body without front matter, starting at file line ``first_line``)."""
    scan = BodyScan()
    stack: list[tuple[str, int]] = []
    in_code = False
    section: str | None = None

    def report(code: str, line: int, col: int, message: str) -> None:
        scan.diagnostics.append(Diagnostic.at(code, path, Position(line, col), message))

    for offset, raw in enumerate(text.splitlines()):
        line_no = first_line + offset
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith(":::"):
            match = _FENCE.match(line)
            assert match is not None
            name, arg = match["name"], match["arg"]
            if not name:
                if stack:
                    stack.pop()
                else:
                    report("C034", line_no, 1, "':::' closes no open block: remove it")
                continue
            name_col = match.start("name") + 1
            if name in ARG_BLOCKS:
                scan.arg_cols[line_no] = match.start("arg") + 1
                if not arg:
                    report(
                        "C020", line_no, name_col, f"'::: {name}' needs an id, e.g. '::: {name} q1'"
                    )
                elif name == "self-check":
                    scan.self_checks.append((arg, line_no, section))
                else:
                    scan.experiments.append((arg, line_no))
            elif name not in BLOCKS:
                report(
                    "C020",
                    line_no,
                    name_col,
                    f"unknown block '{name}': use one of {', '.join(BLOCKS + ARG_BLOCKS)}",
                )
            stack.append((name, line_no))
            continue
        if line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            if hashes == 1:
                report(
                    "C038", line_no, 1, "no '#' heading in a body: the title comes from the YAML"
                )
            elif hashes == 2:
                match = _SECTION.match(line)
                if not match:
                    report(
                        "C038",
                        line_no,
                        1,
                        "a '##' heading needs its section id: '## Title {#section-id}'",
                    )
                else:
                    section = match["id"]
                    scan.sections.append((section, line_no))
            continue
        for image in _IMAGE.finditer(line):
            scan.images += 1
            col = image.start() + 1
            if not image["alt"].strip():
                report("C028", line_no, col, "image without alt text: describe it in ![...]")
            src = image["src"]
            if src.startswith("https://"):
                continue
            if src.startswith("http://"):
                report("C031", line_no, col, f"image {src} must use https")
            elif not _is_file(item_dir / src):
                report("C029", line_no, col, f"image file {src} not found in {item_dir.name}/")
        for link in _LINK.finditer(line):
            href = link["href"]
            col = link.start() + 1
            if href.startswith("http://"):
                report("C031", line_no, col, f"link {href} must use https")
            elif href.startswith(("https://", "mailto:", "#")) or not href:
                continue
            elif not _exists(item_dir / href.split("#", 1)[0]):
                report("C030", line_no, col, f"link target {href} not found")
        if not line.startswith(":::"):
            scan.words += len(_WORD.findall(_LINK.sub("", _IMAGE.sub("", line))))
    for name, line_no in stack:
        report("C034", line_no, 1, f"block '::: {name}' is never closed: add ':::' after it")
    anchors = {s for s, _ in scan.sections}
    for offset, raw in enumerate(text.splitlines()):
        for link in _LINK.finditer(raw):
            href = link["href"]
            if href.startswith("#") and href[1:] not in anchors:
                report(
                    "C030",
                    first_line + offset,
                    link.start() + 1,
                    f"anchor {href} matches no section id",
                )
    return scan
