"""Published content versions as catalog objects, and what a pin resolves to.

A published version is immutable, so it is built from its stored canonical source once
per process. Pins resolve against the published rows; the list of an item's versions is
cached for a few seconds (publishing is rare and a new version may appear a little late).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.content.bodies import split_front_matter
from lti_tool.content.model import (
    Body,
    Experiment,
    Module,
    build_experiment,
    build_module,
)
from lti_tool.content.versions import SemVer, parse_reference
from lti_tool.models import ContentVersion

VERSIONS_CACHE_SECONDS = 10.0
_LANGS = ("fr-CA", "en")


@dataclass(frozen=True)
class PublishedVersion:
    item_id: str
    kind: str
    version: SemVer
    #: {lang: text} of this version's changelog entry.
    changelog: dict[str, str]

    @property
    def major(self) -> int:
        return self.version.major


class PublishedContent:
    """Per-process view of the published versions (thread-safe)."""

    def __init__(self, content_root: Path) -> None:
        self.content_root = content_root
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], Module | Experiment] = {}
        self._media: dict[tuple[str, str], dict[str, str]] = {}
        self._versions: dict[str, tuple[float, tuple[PublishedVersion, ...]]] = {}

    def versions(self, session: Session, item_id: str) -> tuple[PublishedVersion, ...]:
        """Published versions of ``item_id``, newest first (cached a few seconds)."""
        now = time.monotonic()
        hit = self._versions.get(item_id)
        if hit is not None and now - hit[0] < VERSIONS_CACHE_SECONDS:
            return hit[1]
        rows = session.execute(
            select(
                ContentVersion.kind,
                ContentVersion.major,
                ContentVersion.minor,
                ContentVersion.patch,
                ContentVersion.changelog,
            ).where(ContentVersion.item_id == item_id)
        ).all()
        found = sorted(
            (
                PublishedVersion(item_id, kind, SemVer(ma, mi, pa), _changelog(log))
                for kind, ma, mi, pa, log in rows
            ),
            key=lambda v: v.version,
            reverse=True,
        )
        result = tuple(found)
        with self._lock:
            self._versions[item_id] = (now, result)
        return result

    def forget_versions(self) -> None:
        with self._lock:
            self._versions.clear()

    def resolve(self, session: Session, item_id: str, pin: str) -> PublishedVersion | None:
        """The newest published version ``pin`` selects, or None."""
        ref = parse_reference(f"{item_id}@{pin}")
        if ref is None:
            return None
        return next((v for v in self.versions(session, item_id) if ref.matches(v.version)), None)

    def item(self, session: Session, item_id: str, version: str) -> Module | Experiment | None:
        """The item at exactly ``version``, built from its stored source; None if unknown."""
        key = (item_id, version)
        hit = self._items.get(key)
        if hit is not None:
            return hit
        row = session.execute(
            select(ContentVersion.kind, ContentVersion.source).where(
                ContentVersion.item_id == item_id, ContentVersion.version == version
            )
        ).first()
        if row is None:
            return None
        kind, source = row
        data = json.loads(source)
        built = _build(kind, data["files"], item_id)
        if built is None:
            return None
        with self._lock:
            self._items[key] = built
            self._media[key] = dict(data.get("media", {}))
        return built

    def media_file(self, item_id: str, version: str, rel: str) -> Path | None:
        """The working-tree file of a published medium, if its bytes are the published ones.

        Media are stored by hash; the bytes come from the content tree (a later version
        that changed an image under the same name no longer serves the old one).
        """
        expected = self._media.get((item_id, version), {}).get(rel)
        if expected is None:
            return None
        path = (self.content_root / "modules" / item_id / rel).resolve()
        base = (self.content_root / "modules" / item_id).resolve()
        if base not in path.parents or not path.is_file():
            return None
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            return None
        return path


def _changelog(raw: str) -> dict[str, str]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return {k: str(v) for k, v in data.items() if k in _LANGS} if isinstance(data, dict) else {}


def _build(kind: str, files: dict[str, Any], item_id: str) -> Module | Experiment | None:
    if kind == "module":
        raw = files.get("module.yaml")
        if not isinstance(raw, dict):
            return None
        bodies = []
        for lang in raw.get("languages", []):
            text = files.get(f"{lang}.md")
            if isinstance(text, str):
                _front, body, taken = split_front_matter(text)
                bodies.append(Body(lang, body, taken + 1))
        return build_module(raw, tuple(bodies), f"modules/{item_id}/module.yaml")
    if kind == "experiment":
        raw = files.get("experiment.yaml")
        if not isinstance(raw, dict):
            return None
        return build_experiment(raw, f"experiments/{item_id}/experiment.yaml")
    return None
