"""Preview of a content working tree: the catalog as it is now, and its media files.

No database, no LTI: the preview reads files only. The catalog is reloaded when the
content's fingerprint (every file's path, mtime and size) changes, so an author sees an
edit on the next request; drafts are included, and content with errors still yields
whatever items could be built, with the diagnostics to show.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lti_tool.content.catalog import CheckResult, content_fingerprint, load_catalog_cached
from lti_tool.content.diagnostics import ERROR, Diagnostic

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

#: What the preview serves from ``modules/<id>/media/`` and as badge images, by extension.
MEDIA_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Snapshot:
    """The content as loaded for one fingerprint."""

    fingerprint: str
    result: CheckResult

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.result.diagnostics

    @property
    def error_count(self) -> int:
        return sum(1 for d in self.result.diagnostics if d.severity == ERROR)

    @property
    def warning_count(self) -> int:
        return len(self.result.diagnostics) - self.error_count


@dataclass(frozen=True)
class MediaFile:
    path: Path
    mimetype: str


def short_fingerprint(root: Path) -> str:
    """:func:`content_fingerprint` of ``root`` hashed to 16 hex characters."""
    raw = repr(content_fingerprint(root)).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:16]


#: How long a computed fingerprint is trusted; the page polls for changes every second.
FINGERPRINT_SECONDS = 0.5


class PreviewContent:
    """The content of one working tree, reloaded when its files change. Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._fingerprint: tuple[float, str] | None = None

    def fingerprint(self, fresh: bool = False) -> str:
        """The content's short fingerprint, read at most every FINGERPRINT_SECONDS: a page
        asks for it several times, and stat-ing every file each time cost more than the
        page (a large library has thousands of files). ``fresh`` reads the files now
        (the reload poll)."""
        now = time.monotonic()
        cached = self._fingerprint
        if not fresh and cached is not None and now - cached[0] < FINGERPRINT_SECONDS:
            return cached[1]
        fingerprint = short_fingerprint(self.root)
        self._fingerprint = (now, fingerprint)
        return fingerprint

    def current(self) -> Snapshot:
        """The snapshot for the files as they are now (loaded again only when they changed)."""
        fingerprint = self.fingerprint()
        with self._lock:
            if self._snapshot is None or self._snapshot.fingerprint != fingerprint:
                self._snapshot = Snapshot(fingerprint, load_catalog_cached(self.root))
            return self._snapshot

    def module_media(self, module_id: str, filename: str) -> MediaFile | None:
        """A file under ``modules/<id>/media/``, or None (missing, outside, not an image)."""
        if not _SLUG.fullmatch(module_id):
            return None
        return self._inside(self.root / "modules" / module_id / "media", filename)

    def badge_image(self, badge_id: str, filename: str) -> MediaFile | None:
        """A badge's image file in ``badges/<id>/``, or None."""
        if not _SLUG.fullmatch(badge_id):
            return None
        return self._inside(self.root / "badges" / badge_id, filename)

    def _inside(self, base: Path, filename: str) -> MediaFile | None:
        parts = filename.replace("\\", "/").split("/")
        if not filename or any(not p or p.startswith(".") for p in parts):
            return None  # empty segments, '..', hidden files
        try:
            folder = base.resolve()
            target = (folder / Path(*parts)).resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        # resolve() follows symbolic links: what they point to must stay inside too.
        if not (target.is_relative_to(folder) and target.is_relative_to(self.root)):
            return None
        mimetype = MEDIA_TYPES.get(target.suffix.lower())
        if mimetype is None or not target.is_file():
            return None
        return MediaFile(target, mimetype)
