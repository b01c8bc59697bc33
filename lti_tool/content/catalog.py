"""Load the content tree into a :class:`Catalog` and run every check of CONTENT.md."""

from __future__ import annotations

import gc
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema
from .bodies import BodyScan, scan_body, split_front_matter
from .diagnostics import Diagnostic, Position
from .lock import check_against_lock, read_lock
from .model import (
    BadgeClass,
    Body,
    Catalog,
    Experiment,
    Module,
    Rule,
    build_badge,
    build_experiment,
    build_issuer,
    build_module,
)
from .rules import parse_rules
from .versions import parse_reference, parse_version
from .yaml_source import Document, load_yaml

KINDS = (
    ("modules", "module.yaml", schema.MODULE),
    ("experiments", "experiment.yaml", schema.EXPERIMENT),
    ("badges", "badge.yaml", schema.BADGE),
)


@dataclass
class _Loaded:
    kind: str
    folder: Path
    doc: Document
    valid: bool
    refs: list[tuple[str, tuple[str | int, ...]]] = field(default_factory=list)
    rule: Rule | None = None
    bodies: tuple[Body, ...] = ()


@dataclass
class CheckResult:
    catalog: Catalog
    diagnostics: list[Diagnostic]
    item_count: int


def load_catalog(root: Path) -> CheckResult:
    """Read ``root``'s modules/, experiments/ and badges/; never raises on bad content."""
    # Every parsed document stays alive until the end: the cyclic garbage collector would
    # walk them again and again for nothing (a third of the time on a large library).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_catalog(root)
    finally:
        if was_enabled:
            gc.enable()


def _load_catalog(root: Path) -> CheckResult:
    root = root.resolve()
    out: list[Diagnostic] = []
    loaded: list[_Loaded] = []
    for kind_dir, filename, spec in KINDS:
        base = root / kind_dir
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            rel = f"{kind_dir}/{folder.name}/{filename}"
            path = folder / filename
            if not path.is_file():
                out.append(Diagnostic.at("C017", rel, Position(1, 1), f"{filename} is missing"))
                continue
            text = _read(path, rel, "C001", out)
            if text is None:
                continue
            doc, diags = load_yaml(text, rel)
            out.extend(diags)
            if doc is None:
                continue
            schema_diags = schema.validate(doc, spec)
            out.extend(schema_diags)
            item = _Loaded(kind_dir, folder, doc, valid=not schema_diags and not diags)
            loaded.append(item)
            _check_common(item, out)
            if kind_dir == "modules":
                _check_module(item, root, out)
            elif kind_dir == "experiments":
                _check_experiment(item, out)
            else:
                _check_badge(item, out)
    issuer = _load_issuer(root, out)

    modules: dict[str, Module] = {}
    experiments: dict[str, Experiment] = {}
    badges: dict[str, BadgeClass] = {}
    seen: dict[str, _Loaded] = {}
    for item in loaded:
        item_id = item.doc.value.get("id") if isinstance(item.doc.value, dict) else None
        if not isinstance(item_id, str):
            continue
        if item_id in seen:
            other = seen[item_id]
            out.append(
                Diagnostic.at(
                    "C010",
                    item.doc.path,
                    item.doc.at(("id",)),
                    f"id '{item_id}' is already used by {other.doc.path}: ids are never reused",
                )
            )
            continue
        seen[item_id] = item
        if not item.valid:
            continue
        raw = item.doc.value
        if item.kind == "modules":
            modules[item_id] = build_module(raw, item.bodies, item.doc.path)
        elif item.kind == "experiments":
            experiments[item_id] = build_experiment(raw, item.doc.path)
        elif item.rule is not None:
            badges[item_id] = build_badge(raw, item.rule, item.doc.path)
    catalog = Catalog(modules, experiments, badges, issuer)
    _check_references(loaded, seen, out, read_lock(root))
    issuer_missing = not (root / "badges" / "issuer.yaml").is_file()
    for badge in badges.values():
        if issuer is not None and badge.issuer != issuer.id:
            doc = seen[badge.id].doc
            out.append(
                Diagnostic.at(
                    "C015",
                    doc.path,
                    doc.at(("issuer",)),
                    f"issuer '{badge.issuer}' is not the id in badges/issuer.yaml ({issuer.id})",
                )
            )
        elif issuer_missing:
            doc = seen[badge.id].doc
            out.append(
                Diagnostic.at(
                    "C015",
                    doc.path,
                    doc.at(("issuer",)),
                    f"issuer '{badge.issuer}' is not defined: badges/issuer.yaml is missing",
                )
            )
    # Last, so that an error found above (the issuer, say) also holds the lock check back.
    if not any(d.severity == "error" for d in out):
        out.extend(check_against_lock(root))
    return CheckResult(catalog, sorted(set(out)), len(loaded))


def _load_issuer(root: Path, out: list[Diagnostic]) -> Any:
    path = root / "badges" / "issuer.yaml"
    if not path.is_file():
        return None
    text = _read(path, "badges/issuer.yaml", "C001", out)
    if text is None:
        return None
    doc, diags = load_yaml(text, "badges/issuer.yaml")
    out.extend(diags)
    if doc is None:
        return None
    problems = schema.validate(doc, schema.ISSUER)
    out.extend(problems)
    return build_issuer(doc.value) if not problems and not diags else None


def _read(path: Path, rel: str, code: str, out: list[Diagnostic]) -> str | None:
    """The file's text, or None with ``code`` where it stops being UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        lines = (data[: exc.start].decode("utf-8") + ".").splitlines()
        out.append(
            Diagnostic.at(
                code,
                rel,
                Position(len(lines), len(lines[-1])),
                f"{path.name} is not UTF-8 text: save it with the UTF-8 encoding",
            )
        )
        return None


def _report(
    out: list[Diagnostic], code: str, doc: Document, path: tuple[str | int, ...], message: str
) -> None:
    out.append(Diagnostic.at(code, doc.path, doc.at(path), message))


def _check_common(item: _Loaded, out: list[Diagnostic]) -> None:
    raw = item.doc.value
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("id"), str) and raw["id"] != item.folder.name:
        _report(
            out,
            "C011",
            item.doc,
            ("id",),
            f"id '{raw['id']}' differs from its folder '{item.folder.name}': rename one",
        )
        item.valid = False
    log = raw.get("changelog")
    if (
        isinstance(log, list)
        and log
        and isinstance(log[0], dict)
        # A version that is not SemVer is reported as such (C013), not again here.
        and parse_version(str(log[0].get("version"))) is not None
        and parse_version(str(raw.get("version"))) is not None
        and str(log[0].get("version")) != str(raw.get("version"))
    ):
        _report(
            out,
            "C035",
            item.doc,
            ("changelog", 0, "version"),
            f"the newest changelog entry is {log[0].get('version')}, the item is "
            f"{raw.get('version')}: add an entry for this version first",
        )


def _dupes(
    out: list[Diagnostic], doc: Document, entries: Any, path: tuple[str | int, ...], what: str
) -> set[str]:
    ids: set[str] = set()
    if not isinstance(entries, list):
        return ids
    for i, entry in enumerate(entries):
        entry_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(entry_id, str):
            continue
        if entry_id in ids:
            _report(out, "C040", doc, (*path, i, "id"), f"{what} id '{entry_id}' is used twice")
        ids.add(entry_id)
    return ids


def _check_module(item: _Loaded, root: Path, out: list[Diagnostic]) -> None:
    doc, raw = item.doc, item.doc.value
    if not isinstance(raw, dict):
        return
    objectives = _dupes(out, doc, raw.get("objectives"), ("objectives",), "objective")
    sections: list[Any] = raw["sections"] if isinstance(raw.get("sections"), list) else []
    section_ids = [s.get("id") for s in sections if isinstance(s, dict)]
    _dupes(out, doc, sections, ("sections",), "section")
    self_check: dict[str, Any] = (
        raw["self_check"] if isinstance(raw.get("self_check"), dict) else {}
    )
    questions: list[Any] = (
        self_check["questions"] if isinstance(self_check.get("questions"), list) else []
    )
    question_ids = _dupes(out, doc, questions, ("self_check", "questions"), "question")
    for i, section in enumerate(sections):
        listed = section.get("objectives") if isinstance(section, dict) else None
        for j, obj in enumerate(listed if isinstance(listed, list) else []):
            # Values that are not text are the schema's (C006); only names are looked up.
            if isinstance(obj, str) and obj not in objectives:
                _report(
                    out,
                    "C015",
                    doc,
                    ("sections", i, "objectives", j),
                    f"section objective '{obj}' is not defined in objectives",
                )
    for i, q in enumerate(questions):
        if isinstance(q, dict):
            _check_question(out, doc, q, ("self_check", "questions", i), objectives)
    duration: dict[str, Any] = raw["duration"] if isinstance(raw.get("duration"), dict) else {}
    minutes: list[Any] = [s.get("minutes") for s in sections if isinstance(s, dict)]
    total = duration.get("learning_minutes")
    if (
        # Minutes that are not whole numbers are the schema's to report (C006), not summed.
        all(isinstance(m, int) and not isinstance(m, bool) for m in minutes)
        and isinstance(total, int)
        and sum(minutes) != total
    ):
        _report(
            out,
            "C041",
            doc,
            ("duration", "learning_minutes"),
            f"sections add up to {sum(minutes)} minutes, the duration says {total}",
        )
    # Bodies: one per language, same structure.
    langs = (
        [lang for lang in raw.get("languages", []) if lang in schema.LANGUAGES]
        if isinstance(raw.get("languages"), list)
        else []
    )
    scans: dict[str, tuple[str, BodyScan]] = {}
    # What each body already got a diagnostic for against module.yaml (C019, C021, C022,
    # C039): comparing the languages on that point again would only repeat it as C023.
    reported: set[str] = set()
    bodies = []
    linked = raw.get("linked_experiment")
    linked_id = linked.split("@", 1)[0] if isinstance(linked, str) else None
    for lang in langs:
        rel = f"modules/{item.folder.name}/{lang}.md"
        path = item.folder / f"{lang}.md"
        if not path.is_file():
            out.append(
                Diagnostic.at(
                    "C017",
                    rel,
                    Position(1, 1),
                    f"{lang}.md is missing: every language needs its body",
                )
            )
            item.valid = False
            continue
        text = _read(path, rel, "C017", out)
        if text is None:
            item.valid = False
            continue
        try:
            meta, body, taken = split_front_matter(text)
        except ValueError as exc:
            out.append(Diagnostic.at("C018", rel, Position(1, 1), f"{exc}: fix the '---' block"))
            meta, body, taken = None, text, 0
        if meta is not None and (meta.get("module") != raw.get("id") or meta.get("lang") != lang):
            out.append(
                Diagnostic.at(
                    "C018",
                    rel,
                    Position(1, 1),
                    f"front matter must say 'module: {raw.get('id')}' and 'lang: {lang}' "
                    "between two '---' lines",
                )
            )
        scan = scan_body(body, rel, item.folder, taken + 1)
        out.extend(scan.diagnostics)
        scans[lang] = (rel, scan)
        bodies.append(Body(lang, body, taken + 1))
        reported |= _check_body_against_yaml(out, rel, scan, section_ids, question_ids, linked_id)
    item.bodies = tuple(bodies)
    if "fr-CA" in scans and len(scans) > 1:
        fr_rel, fr = scans["fr-CA"]
        for lang, (rel, other) in scans.items():
            if lang == "fr-CA":
                continue
            # Which section a block is in says nothing once the sections are wrong (C019).
            by_section = "section ids" not in reported
            for what, a, b in (
                ("section ids", [s for s, _ in fr.sections], [s for s, _ in other.sections]),
                (
                    "self-check blocks",
                    [(q, s if by_section else None) for q, _, s in fr.self_checks],
                    [(q, s if by_section else None) for q, _, s in other.self_checks],
                ),
                (
                    "experiment blocks",
                    [e for e, _ in fr.experiments],
                    [e for e, _ in other.experiments],
                ),
                ("images", [fr.images], [other.images]),
            ):
                if a != b and what not in reported:
                    out.append(
                        Diagnostic.at(
                            "C023",
                            rel,
                            Position(1, 1),
                            f"{what} differ from {fr_rel}: both languages need the same structure",
                        )
                    )
            if (
                fr.words
                and other.words
                and max(fr.words, other.words) > 1.5 * min(fr.words, other.words)
            ):
                out.append(
                    Diagnostic.at(
                        "C042",
                        rel,
                        Position(1, 1),
                        f"{other.words} words here and {fr.words} in {fr_rel}: "
                        "check that nothing is missing",
                    )
                )


def _check_body_against_yaml(
    out: list[Diagnostic],
    rel: str,
    scan: BodyScan,
    section_ids: list[Any],
    question_ids: set[str],
    linked_id: str | None,
) -> set[str]:
    """Check one body against module.yaml; returns the structure parts found wrong."""
    reported: set[str] = set()
    found = [s for s, _ in scan.sections]
    if found != section_ids:
        reported.add("section ids")
        # At the first heading that is not the expected one (else the last heading).
        wrong = [n for (s, n), want in zip(scan.sections, section_ids, strict=False) if s != want]
        line = wrong[0] if wrong else (scan.sections[-1][1] if scan.sections else 1)
        missing = [s for s in section_ids if s not in found]
        extra = [s for s in found if s not in section_ids]
        detail = []
        if missing:
            detail.append("missing " + ", ".join(map(str, missing)))
        if extra:
            detail.append("not in sections: " + ", ".join(extra))
        if not detail:
            detail.append("order differs from sections")
        out.append(
            Diagnostic.at(
                "C019",
                rel,
                Position(line, 1),
                "'##' section headings do not match module.yaml sections ("
                + "; ".join(detail)
                + ")",
            )
        )
    placed: dict[str, list[int]] = {}
    for qid, line, _ in scan.self_checks:
        if qid not in question_ids:
            reported.add("self-check blocks")
            out.append(
                Diagnostic.at(
                    "C021",
                    rel,
                    Position(line, scan.arg_cols.get(line, 1)),
                    f"'{qid}' is not a question of self_check.questions",
                )
            )
        placed.setdefault(qid, []).append(line)
    for qid in sorted(question_ids):
        lines = placed.get(qid, [])
        if len(lines) != 1:
            reported.add("self-check blocks")
            # A repeated block is reported where it is repeated; a missing one at the top.
            where = Position(lines[1], scan.arg_cols.get(lines[1], 1)) if lines else Position(1, 1)
            out.append(
                Diagnostic.at(
                    "C022",
                    rel,
                    where,
                    f"question '{qid}' appears {len(lines)} times: place it once with "
                    f"'::: self-check {qid}' and ':::'",
                )
            )
    for exp_id, line in scan.experiments:
        if exp_id != linked_id:
            reported.add("experiment blocks")
            out.append(
                Diagnostic.at(
                    "C039",
                    rel,
                    Position(line, scan.arg_cols.get(line, 1)),
                    f"'::: experiment {exp_id}' is not the module's linked_experiment "
                    f"({linked_id or 'none'})",
                )
            )
    return reported


def _check_question(
    out: list[Diagnostic],
    doc: Document,
    q: dict[str, Any],
    path: tuple[str | int, ...],
    objectives: set[str],
) -> None:
    qtype = q.get("type")
    if isinstance(q.get("objective"), str) and q["objective"] not in objectives:
        _report(
            out,
            "C015",
            doc,
            (*path, "objective"),
            f"objective '{q.get('objective')}' is not defined in objectives",
        )
    if qtype in ("single", "multiple"):
        options = q.get("options")
        if not isinstance(options, list):
            _report(out, "C005", doc, path, f"a {qtype} question needs options")
            return
        _dupes(out, doc, options, (*path, "options"), "option")
        correct = sum(1 for o in options if isinstance(o, dict) and o.get("correct") is True)
        if qtype == "single" and correct != 1:
            _report(
                out,
                "C024",
                doc,
                (*path, "options"),
                f"a single-choice question needs exactly one correct option, not {correct}",
            )
        if qtype == "multiple" and correct < 1:
            _report(
                out,
                "C024",
                doc,
                (*path, "options"),
                "a multiple-choice question needs at least one correct option",
            )
    elif qtype in ("true_false", "short_text"):
        needed = ("answer", "feedback") if qtype == "true_false" else ("accepted", "feedback")
        for key in needed:
            if key not in q:
                _report(out, "C005", doc, path, f"a {qtype} question needs '{key}'")


def _check_experiment(item: _Loaded, out: list[Diagnostic]) -> None:
    doc, raw = item.doc, item.doc.value
    if not isinstance(raw, dict):
        return
    _dupes(out, doc, raw.get("deliverables"), ("deliverables",), "deliverable")
    deliverables = raw.get("deliverables")
    for i, d in enumerate(deliverables if isinstance(deliverables, list) else []):
        if not isinstance(d, dict):
            continue
        if d.get("type") == "file" and "accept" not in d:
            _report(
                out,
                "C005",
                doc,
                ("deliverables", i),
                "a file deliverable needs 'accept' (the allowed extensions)",
            )
        limits = d.get("limits")
        if (
            isinstance(limits, dict)
            and isinstance(limits.get("min_words"), int)
            and isinstance(limits.get("max_words"), int)
            and limits["min_words"] > limits["max_words"]
        ):
            _report(
                out,
                "C007",
                doc,
                ("deliverables", i, "limits"),
                "min_words is larger than max_words",
            )
    rubric = raw.get("rubric")
    if not isinstance(rubric, dict) or not isinstance(rubric.get("criteria"), list):
        return
    _dupes(out, doc, rubric["criteria"], ("rubric", "criteria"), "criterion")
    maxima = 0
    for i, c in enumerate(rubric["criteria"]):
        levels = c.get("levels") if isinstance(c, dict) else None
        if not isinstance(levels, list):
            continue
        _dupes(out, doc, levels, ("rubric", "criteria", i, "levels"), "level")
        points: list[Any] = [lv.get("points") for lv in levels if isinstance(lv, dict)]
        if not all(isinstance(p, int) for p in points):
            continue
        if points[:1] != [0] or any(b <= a for a, b in itertools.pairwise(points)):
            _report(
                out,
                "C025",
                doc,
                ("rubric", "criteria", i, "levels"),
                f"levels must start at 0 points and go strictly up, found {points}",
            )
        maxima += max(points, default=0)
    total, passing = rubric.get("total_points"), rubric.get("pass_points")
    if isinstance(total, int) and total != maxima:
        _report(
            out,
            "C026",
            doc,
            ("rubric", "total_points"),
            f"total_points is {total}, the criteria's top levels add up to {maxima}",
        )
    if isinstance(total, int) and isinstance(passing, int) and passing > total:
        _report(
            out,
            "C027",
            doc,
            ("rubric", "pass_points"),
            f"pass_points {passing} is more than total_points {total}",
        )


def _check_badge(item: _Loaded, out: list[Diagnostic]) -> None:
    doc, raw = item.doc, item.doc.value
    if not isinstance(raw, dict):
        return
    criteria = raw.get("criteria")
    if isinstance(criteria, dict) and "rules" in criteria:
        rule, refs, diags = parse_rules(doc, criteria["rules"], ("criteria", "rules"))
        out.extend(diags)
        item.rule, item.refs = rule, refs
        if rule is None:
            item.valid = False
    image = raw.get("image")
    if isinstance(image, dict) and isinstance(image.get("file"), str):
        problem = _svg_problem(item.folder / image["file"])
        if problem:
            _report(out, "C037", doc, ("image", "file"), problem)
            item.valid = False


def _svg_problem(path: Path) -> str | None:
    try:
        found = path.is_file()
    except OSError:  # a name the OS refuses (too long, say)
        found = False
    if not found:
        return f"image file {path.name} not found"
    if path.suffix.lower() != ".svg":
        return None
    try:
        tree = ET.parse(path)  # noqa: S314 - the project's own file, no entity expansion
    except ET.ParseError as exc:
        return f"{path.name} is not valid SVG: {exc}"
    for el in tree.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in ("script", "foreignObject"):
            return f"{path.name} contains <{tag}>: badge images must be static"
        for name, value in el.attrib.items():
            if name.rsplit("}", 1)[-1] in ("href",) and not value.startswith("#"):
                return f"{path.name} refers to {value}: embed everything in the file"
            if name.startswith("on"):
                return f"{path.name} has an event handler ({name})"
    root = tree.getroot()
    svg = "{http://www.w3.org/2000/svg}"
    if root.get("role") != "img" or root.find(f"{svg}title") is None:
        return f'{path.name} needs role="img" and a <title> for screen readers'
    if root.find(f"{svg}desc") is None:
        return f"{path.name} needs a <desc> that describes the badge for screen readers"
    try:
        _x, _y, width, height = (
            float(v) for v in root.get("viewBox", "").replace(",", " ").split()
        )
    except ValueError:
        width, height = 0.0, -1.0
    if width != height or width <= 0:
        return f'{path.name} must be square: viewBox="0 0 512 512"'
    return None


def _check_references(
    loaded: list[_Loaded],
    seen: dict[str, _Loaded],
    out: list[Diagnostic],
    lock: dict[str, list[dict[str, str]]],
) -> None:
    for item in loaded:
        raw = item.doc.value
        if not isinstance(raw, dict):
            continue
        refs: list[tuple[Any, tuple[str | int, ...]]] = list(item.refs)
        if item.kind == "modules":
            pre = raw.get("prerequisites")
            if isinstance(pre, dict) and isinstance(pre.get("modules"), list):
                refs += [(v, ("prerequisites", "modules", i)) for i, v in enumerate(pre["modules"])]
            if raw.get("linked_experiment"):
                refs.append((raw["linked_experiment"], ("linked_experiment",)))
        elif item.kind == "experiments" and isinstance(raw.get("linked_modules"), list):
            refs += [(v, ("linked_modules", i)) for i, v in enumerate(raw["linked_modules"])]
        for value, path in refs:
            ref = parse_reference(value) if isinstance(value, str) else None
            if ref is None:
                continue
            target = seen.get(ref.id)
            if target is None:
                _report(out, "C015", item.doc, path, f"'{ref.id}' does not exist")
                continue
            # A reference holds if the present version or any published one satisfies it.
            candidates = [str(target.doc.value.get("version"))]
            candidates += [str(v.get("version")) for v in lock.get(ref.id, [])]
            parsed = [v for v in map(parse_version, candidates) if v is not None]
            if parsed and not any(ref.matches(v) for v in parsed):
                version = parsed[0]
                _report(
                    out,
                    "C016",
                    item.doc,
                    path,
                    f"'{value}' matches no version of {ref.id} (present: {version}; "
                    "published: see content.lock)",
                )


_CACHE: dict[tuple[str, tuple[tuple[str, int, int], ...]], CheckResult] = {}


def content_fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of every content file: changes when any file changes."""
    files = []
    for kind_dir in ("modules", "experiments", "badges"):
        base = root / kind_dir
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    files.append((str(path.relative_to(root)), stat.st_mtime_ns, stat.st_size))
    return tuple(files)


def load_catalog_cached(root: Path) -> CheckResult:
    """:func:`load_catalog`, memoised per content fingerprint (the catalog is immutable)."""
    root = root.resolve()
    key = (str(root), content_fingerprint(root))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_catalog(root)
    return _CACHE[key]
