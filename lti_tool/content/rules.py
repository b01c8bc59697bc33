"""The badge rule language: parsed and type-checked here, evaluated by the domain later.

A registry maps each rule type to a small parser. Adding a rule type is adding one
entry; the checker, the docs and the evaluator all read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .diagnostics import Diagnostic
from .model import Rule
from .versions import parse_reference
from .yaml_source import Document, Path

Parse = Callable[["_Parser", Any, Path], Rule | None]


@dataclass(frozen=True)
class RuleType:
    name: str
    description: str
    parse: Parse


class _Parser:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.out: list[Diagnostic] = []
        #: Every item id the rules refer to, with where: for reference checks.
        self.references: list[tuple[str, Path]] = []

    def report(self, path: Path, message: str, key: bool = False) -> None:
        """Report at the value at ``path``, or at its key (a wrong name) with ``key``."""
        pos = self.doc.key_at(path) if key else self.doc.at(path)
        self.out.append(Diagnostic.at("C036", self.doc.path, pos, message))

    def rule(self, value: Any, path: Path) -> Rule | None:
        if not isinstance(value, dict) or len(value) != 1:
            self.report(
                path,
                "a rule is a mapping with exactly one rule type, one of: " + ", ".join(RULE_TYPES),
            )
            return None
        ((name, args),) = value.items()
        rule_type = RULE_TYPES.get(name)
        if rule_type is None:
            self.report(
                (*path, name),
                f"unknown rule type '{name}': use one of {', '.join(RULE_TYPES)}",
                key=True,
            )
            return None
        return rule_type.parse(self, args, (*path, name))

    def ref(self, value: Any, path: Path) -> str | None:
        ref = parse_reference(value) if isinstance(value, str) else None
        if ref is None:
            self.report(path, f"'{value}' is not a reference such as m01-maturite@1")
            return None
        self.references.append((value, path))
        return str(value)

    def args(self, value: Any, path: Path, allowed: dict[str, bool]) -> dict[str, Any] | None:
        """Check a rule's arguments: ``allowed`` maps name -> required."""
        if not isinstance(value, dict):
            self.report(path, f"expected arguments {', '.join(allowed)}")
            return None
        ok = True
        for key in value:
            if key not in allowed:
                self.report(
                    (*path, key),
                    f"unknown argument '{key}' (allowed: {', '.join(allowed)})",
                    key=True,
                )
                ok = False
        for key, required in allowed.items():
            if required and key not in value:
                self.report(path, f"missing argument '{key}'")
                ok = False
        return value if ok else None


def _combinator(name: str) -> Parse:
    def parse(p: _Parser, value: Any, path: Path) -> Rule | None:
        if not isinstance(value, list) or not value:
            p.report(path, f"'{name}' takes a non-empty list of rules")
            return None
        children = [p.rule(v, (*path, i)) for i, v in enumerate(value)]
        if any(c is None for c in children):
            return None
        return Rule(name, (), tuple(c for c in children if c is not None))

    return parse


def _items(p: _Parser, value: Any, path: Path) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not value:
        p.report(path, "'items' is a non-empty list of references")
        return None
    refs = [p.ref(v, (*path, i)) for i, v in enumerate(value)]
    return None if any(r is None for r in refs) else tuple(r for r in refs if r)


def _ratio(p: _Parser, value: Any, path: Path) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        p.report(path, "min_ratio is a number between 0 and 1 (0.7 for 70 %)")
        return None
    return float(value)


def _points(p: _Parser, value: Any, path: Path) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        p.report(path, "min_points is a whole number of rubric points")
        return None
    return value


def _modules_completed(p: _Parser, value: Any, path: Path) -> Rule | None:
    args = p.args(value, path, {"items": True})
    items = _items(p, args["items"], (*path, "items")) if args else None
    return Rule("modules_completed", (("items", items),)) if items else None


def _experiment_submitted(p: _Parser, value: Any, path: Path) -> Rule | None:
    args = p.args(value, path, {"item": True})
    item = p.ref(args["item"], (*path, "item")) if args else None
    return Rule("experiment_submitted", (("item", item),)) if item else None


def _experiment_passed(p: _Parser, value: Any, path: Path) -> Rule | None:
    args = p.args(value, path, {"item": True, "min_points": False, "min_ratio": False})
    if not args:
        return None
    item = p.ref(args["item"], (*path, "item"))
    if ("min_points" in args) == ("min_ratio" in args):
        p.report(path, "give exactly one of min_points or min_ratio")
        return None
    if "min_points" in args:
        threshold: tuple[str, Any] = (
            "min_points",
            _points(p, args["min_points"], (*path, "min_points")),
        )
    else:
        threshold = ("min_ratio", _ratio(p, args["min_ratio"], (*path, "min_ratio")))
    if item is None or threshold[1] is None:
        return None
    return Rule("experiment_passed", (("item", item), threshold))


def _experiments_passed(p: _Parser, value: Any, path: Path) -> Rule | None:
    allowed = {
        "items": True,
        "at_least": False,
        "must_include": False,
        "min_ratio": False,
        "min_points": False,
    }
    args = p.args(value, path, allowed)
    if not args:
        return None
    items = _items(p, args["items"], (*path, "items"))
    if items is None:
        return None
    at_least = args.get("at_least", len(items))
    if (
        isinstance(at_least, bool)
        or not isinstance(at_least, int)
        or not 1 <= at_least <= len(items)
    ):
        p.report((*path, "at_least"), f"at_least is a whole number from 1 to {len(items)}")
        return None
    ids = {i.split("@", 1)[0] for i in items}
    must = args.get("must_include", [])
    if not isinstance(must, list) or any(not isinstance(m, str) or m not in ids for m in must):
        p.report((*path, "must_include"), "must_include lists ids that are among the items")
        return None
    if "min_ratio" in args and "min_points" in args:
        p.report(path, "give at most one of min_points or min_ratio")
        return None
    threshold: tuple[str, Any] = ("min_ratio", 0.0)
    if "min_ratio" in args:
        threshold = ("min_ratio", _ratio(p, args["min_ratio"], (*path, "min_ratio")))
    elif "min_points" in args:
        threshold = ("min_points", _points(p, args["min_points"], (*path, "min_points")))
    if threshold[1] is None:
        return None
    return Rule(
        "experiments_passed",
        (("items", items), ("at_least", at_least), ("must_include", tuple(must)), threshold),
    )


def _badge_held(p: _Parser, value: Any, path: Path) -> Rule | None:
    ref = p.ref(value, path)
    return Rule("badge_held", (("item", ref),)) if ref else None


def _manual_approval(p: _Parser, value: Any, path: Path) -> Rule | None:
    args = p.args(value, path, {"role": True, "note_required": False})
    if not args:
        return None
    if args["role"] != "coordinator":
        p.report((*path, "role"), "only a coordinator approves badges: role: coordinator")
        return None
    note = args.get("note_required", False)
    if not isinstance(note, bool):
        p.report((*path, "note_required"), "note_required is true or false")
        return None
    return Rule("manual_approval", (("role", "coordinator"), ("note_required", note)))


RULE_TYPES: dict[str, RuleType] = {
    "all_of": RuleType("all_of", "every listed rule holds", _combinator("all_of")),
    "any_of": RuleType("any_of", "at least one listed rule holds", _combinator("any_of")),
    "modules_completed": RuleType(
        "modules_completed", "every listed module completed", _modules_completed
    ),
    "experiment_submitted": RuleType(
        "experiment_submitted", "the experiment submitted", _experiment_submitted
    ),
    "experiment_passed": RuleType(
        "experiment_passed", "the experiment graded at least a threshold", _experiment_passed
    ),
    "experiments_passed": RuleType(
        "experiments_passed", "enough of the listed experiments passed", _experiments_passed
    ),
    "badge_held": RuleType("badge_held", "another badge already held", _badge_held),
    "manual_approval": RuleType(
        "manual_approval", "a coordinator approved, with a note as evidence", _manual_approval
    ),
}


def parse_rules(
    doc: Document, value: Any, path: Path
) -> tuple[Rule | None, list[tuple[str, Path]], list[Diagnostic]]:
    """Parse a badge's ``criteria.rules``: (rule tree or None, references, diagnostics)."""
    parser = _Parser(doc)
    rule = parser.rule(value, path)
    return rule, parser.references, parser.out
