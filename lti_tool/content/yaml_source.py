"""Safe YAML with source positions.

libyaml's composer (``yaml.CSafeLoader``) keeps line and column on every node and is
much faster than the pure-Python loader. Nodes become plain Python values plus a map
from each value's path (a tuple of keys and indices) to where it was written, so every
diagnostic can say ``path:line:col``. Anchors, aliases, merge keys and duplicate keys
are refused: content is read by people, and those make it say something else than it
shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import Diagnostic, Position

try:  # libyaml; the pure-Python classes are the fallback when it is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]

_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


@dataclass
class Document:
    """A parsed YAML file: its value and where each part of it was written."""

    path: str
    value: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    key_positions: dict[Path, Position] = field(default_factory=dict)
    #: Paths of plain scalars YAML 1.1 read as booleans (``en: No``).
    yaml11_booleans: set[Path] = field(default_factory=set)

    def at(self, path: Path) -> Position:
        """Position of the value at ``path``, else of its nearest written ancestor."""
        for i in range(len(path), -1, -1):
            pos = self.positions.get(path[:i])
            if pos is not None:
                return pos
        return Position(1, 1)

    def key_at(self, path: Path) -> Position:
        return self.key_positions.get(path) or self.at(path)


def load_yaml(text: str, path: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse ``text`` (the file at ``path``, relative to the content root).

    Returns the document, or None with the syntax diagnostic.
    """
    diagnostics: list[Diagnostic] = []
    try:
        # Anchors and aliases only show in the event stream, not in composed nodes.
        # Anchors and aliases need '&' or '*': skip the event pass for most files.
        events = yaml.parse(text, Loader=_Loader) if ("&" in text or "*" in text) else ()
        for event in events:
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor:
                mark: Any = event.start_mark
                diagnostics.append(
                    Diagnostic.at(
                        "C002",
                        path,
                        Position(mark.line + 1, mark.column + 1),
                        "YAML anchors and aliases are not allowed: write the value out "
                        "in full where it is used",
                    )
                )
        if diagnostics:
            return None, diagnostics
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _inside(text, mark.line, mark.column) if mark else Position(1, 1)
        problem = exc.problem or "invalid YAML"
        return None, [Diagnostic.at("C001", path, where, f"YAML syntax error: {problem}")]
    except yaml.reader.ReaderError as exc:
        # libyaml gives the UTF-8 byte offset of the character it refuses.
        before = text.encode("utf-8")[: exc.position].decode("utf-8", "replace")
        lines = (before + ".").splitlines()
        where = _inside(text, len(lines) - 1, len(lines[-1]) - 1)
        return None, [
            Diagnostic.at(
                "C001",
                path,
                where,
                f"YAML syntax error: character U+{exc.character:04X} is not allowed ({exc.reason})",
            )
        ]
    except yaml.YAMLError as exc:
        return None, [Diagnostic.at("C001", path, Position(1, 1), f"YAML syntax error: {exc}")]
    doc = Document(path=path, value=None)
    if node is None:
        return doc, diagnostics
    doc.value = _convert(node, (), doc, diagnostics)
    # An empty value at the very end (a lone "---", "key:" on the last line) is placed by
    # libyaml one line past the file: every position is kept inside it.
    lines = text.splitlines() or [""]
    last = Position(len(lines), len(lines[-1]) + 1)
    for table in (doc.positions, doc.key_positions):
        table.update({k: last for k, pos in table.items() if pos.line > len(lines)})
    return doc, diagnostics


def _inside(text: str, line: int, column: int) -> Position:
    """1-based position of a 0-based mark, kept inside the file.

    libyaml reports the end of the stream one line past the last one; such marks point
    at the end of the last line instead.
    """
    lines = text.splitlines() or [""]
    if line >= len(lines):
        return Position(len(lines), len(lines[-1]) + 1)
    return Position(line + 1, column + 1)


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, path: Path, doc: Document, out: list[Diagnostic]) -> Any:
    doc.positions[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                out.append(
                    Diagnostic.at(
                        "C002", doc.path, _pos(key_node), "YAML merge keys (<<) are not allowed"
                    )
                )
                continue
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                out.append(
                    Diagnostic.at("C006", doc.path, _pos(key_node), "keys must be plain text")
                )
                continue
            key = str(key)
            if key in result:
                first = doc.key_positions.get((*path, key))
                seen = f" (first at line {first.line})" if first else ""
                out.append(
                    Diagnostic.at(
                        "C003",
                        doc.path,
                        _pos(key_node),
                        f"duplicate key '{key}'{seen}: keep one",
                    )
                )
                continue
            doc.key_positions[(*path, key)] = _pos(key_node)
            result[key] = _convert(value_node, (*path, key), doc, out)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), doc, out) for i, item in enumerate(node.value)]
    value = _scalar(node)
    if (
        isinstance(value, bool)
        and not getattr(node, "style", None)  # plain: None in PyYAML, "" from libyaml
        and str(node.value).lower() in _YAML11_BOOLEANS - {"true", "false"}
    ):
        doc.yaml11_booleans.add(path)
    return value


_CONSTRUCTOR = yaml.SafeLoader("")


_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: yaml.Node) -> Any:
    """Value of a scalar node with the safe schema (ints, floats, bools, dates, null)."""
    if node.tag == _STR_TAG:
        return node.value  # most scalars: no constructor needed
    try:
        value = _CONSTRUCTOR.construct_object(node, deep=True)
    except Exception:  # an impossible date (2026-13-01), "!!int abc", "!!bool maybe"...
        # The text as written; the schema then reports it where a date or number belongs.
        return str(node.value)
    finally:
        _CONSTRUCTOR.constructed_objects.clear()
    return value
