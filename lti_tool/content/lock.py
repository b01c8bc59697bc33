"""Immutable versions: canonical sources, their hashes, and ``content.lock``.

The hash of an item version is SHA-256 of its parsed files as sorted-key, NFC,
LF-normalised JSON, plus the sorted hashes of its media. ``content.lock`` (committed
beside the content) records, for every published version, the hash and the Git commit
it was published from. With it, the checker on a clean clone (no database) tells an
item changed without a version bump (C032), and a MAJOR trigger changed with a MINOR or
PATCH bump (C033) by comparing with the files at the locked commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, Position
from .versions import parse_version

LOCK_FILE = "content.lock"
LOCK_FORMAT = 1
_ITEM_FILES = {"modules": "module.yaml", "experiments": "experiment.yaml", "badges": "badge.yaml"}
KIND_OF_DIR = {"modules": "module", "experiments": "experiment", "badges": "badge"}


def _normalise(value: Any) -> Any:
    """JSON-ready, NFC, LF-only form of a parsed YAML value."""
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    return value


def _load_yaml(text: str) -> Any:
    # libyaml's safe loader: the pure-Python one made a check with a lock ten times slower.
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8")
    return unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True)
class ItemSource:
    """The full canonical source of one item version."""

    id: str
    kind: str
    version: str
    files: dict[str, Any]
    media: dict[str, str]

    @property
    def sha256(self) -> str:
        payload = json.dumps(
            {"files": self.files, "media": sorted(self.media.items())},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {"files": self.files, "media": self.media}, sort_keys=True, ensure_ascii=False
        )


def item_source(folder: Path, kind_dir: str) -> ItemSource:
    """Read an item folder (already checked) into its canonical source."""
    yaml_name = _ITEM_FILES[kind_dir]
    data = _normalise(_load_yaml(_text(folder / yaml_name)))
    files: dict[str, Any] = {yaml_name: data}
    media: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == yaml_name:
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".md":
            files[rel] = _text(path)
        else:
            media[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return ItemSource(str(data["id"]), KIND_OF_DIR[kind_dir], str(data["version"]), files, media)


def all_sources(root: Path) -> list[ItemSource]:
    sources = []
    for kind_dir, yaml_name in _ITEM_FILES.items():
        base = root / kind_dir
        if base.is_dir():
            for folder in sorted(p for p in base.iterdir() if (p / yaml_name).is_file()):
                sources.append(item_source(folder, kind_dir))
    return sources


# -- content.lock ----------------------------------------------------------------------


def read_lock(root: Path) -> dict[str, list[dict[str, str]]]:
    """item id -> published versions (oldest first): version, sha256, commit, date."""
    path = root / LOCK_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data.get("items", {}) if isinstance(data, dict) else {}
    return {str(k): list(v.get("versions", [])) for k, v in items.items()}


def write_lock(root: Path, lock: dict[str, list[dict[str, str]]], kinds: dict[str, str]) -> None:
    data = {
        "lockfile": LOCK_FORMAT,
        "comment": "Published content versions; written by `lti-tool content publish`.",
        "items": {
            item_id: {"kind": kinds.get(item_id, ""), "versions": versions}
            for item_id, versions in sorted(lock.items())
        },
    }
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    (root / LOCK_FILE).write_text(text, encoding="utf-8")


# -- what counts as a MAJOR change -------------------------------------------------------


def assessment_fingerprint(kind: str, data: dict[str, Any]) -> Any:
    """What is assessed and how it is scored: a change here needs a MAJOR version."""
    if kind == "module":
        sc = data.get("self_check") or {}
        counted = [
            {
                "id": q.get("id"),
                "type": q.get("type"),
                "key": [o.get("id") for o in q.get("options") or [] if o.get("correct")],
                "answer": q.get("answer"),
                "accepted": q.get("accepted"),
            }
            for q in sc.get("questions") or []
            if isinstance(q, dict) and q.get("counts", True)
        ]
        return {
            "pass_ratio": sc.get("pass_ratio"),
            "questions": counted,
            "objectives": sorted(o.get("id") for o in data.get("objectives") or []),
        }
    if kind == "experiment":
        rubric = data.get("rubric") or {}
        return {
            "criteria": [
                {"id": c.get("id"), "points": [lv.get("points") for lv in c.get("levels") or []]}
                for c in rubric.get("criteria") or []
            ],
            "total": rubric.get("total_points"),
            "pass": rubric.get("pass_points"),
            "required": sorted(
                d.get("id") for d in data.get("deliverables") or [] if d.get("required", True)
            ),
        }
    return {"rules": (data.get("criteria") or {}).get("rules")}


def git(root: Path, *args: str) -> str:
    """Output of ``git <args>`` run in ``root``; raises OSError/SubprocessError on failure."""
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    ).stdout


def _git_show(root: Path, commit: str, rel: str) -> str | None:
    try:
        top = git(root, "rev-parse", "--show-toplevel").strip()
        prefix = root.resolve().relative_to(Path(top).resolve()).as_posix()
        path = f"{prefix}/{rel}" if prefix not in ("", ".") else rel
        return git(root, "show", f"{commit}:{path}")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def check_against_lock(root: Path) -> list[Diagnostic]:
    """C032 / C033 for every item whose current files differ from what was published."""
    lock = read_lock(root)
    if not lock:
        return []
    out: list[Diagnostic] = []
    for source in all_sources(root):
        published = lock.get(source.id)
        if not published:
            continue
        latest = published[-1]
        current, locked = parse_version(source.version), parse_version(latest["version"])
        kind_dir = next(d for d, k in KIND_OF_DIR.items() if k == source.kind)
        rel = f"{kind_dir}/{source.id}/{_ITEM_FILES[kind_dir]}"
        where = Position(_version_line(root / rel), 1)
        if current is None or locked is None:
            continue
        same = {v["version"]: v for v in published}.get(source.version)
        if same is not None and same["sha256"] != source.sha256:
            out.append(
                Diagnostic.at(
                    "C032",
                    rel,
                    where,
                    f"{source.id} {source.version} was published with other content: bump the "
                    "version (PATCH for typos, MINOR for new text, MAJOR for assessment changes)",
                )
            )
            continue
        if current < locked:
            out.append(
                Diagnostic.at(
                    "C032",
                    rel,
                    where,
                    f"version {current} is older than the published {locked}: versions only go up",
                )
            )
            continue
        if current.major == locked.major and same is None:
            before = _git_show(root, latest["commit"], rel)
            if before is None:
                continue
            old = _normalise(_load_yaml(before))
            now = _normalise(_load_yaml(_text(root / rel)))
            if assessment_fingerprint(source.kind, old) != assessment_fingerprint(source.kind, now):
                out.append(
                    Diagnostic.at(
                        "C033",
                        rel,
                        where,
                        f"what is assessed or how it is scored changed since {locked}: this needs "
                        f"a MAJOR version ({locked.major + 1}.0.0), not {current}",
                    )
                )
    return out


def _version_line(path: Path) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("version:"):
            return i
    return 1
