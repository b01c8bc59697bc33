"""Publishing content versions and resolving placements' pins to published versions."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.content.catalog import load_catalog
from lti_tool.content.diagnostics import Diagnostic, has_errors
from lti_tool.content.lock import ItemSource, all_sources, git, read_lock, write_lock
from lti_tool.content.versions import SemVer, parse_reference, parse_version
from lti_tool.models import ContentVersion


class PublishError(RuntimeError):
    """Publishing refused; the message says what to do."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


@dataclass(frozen=True)
class PublishReport:
    published: list[str]
    unchanged: list[str]
    commit: str
    #: Items left out because their status is ``draft``.
    drafts: list[str] = field(default_factory=list)


def git_commit(root: Path, allow_dirty: bool = False) -> str:
    """The commit the content is published from; refuses uncommitted content changes."""
    try:
        commit = git(root, "rev-parse", "HEAD").strip()
        dirty = git(root, "status", "--porcelain", "--", "modules", "experiments", "badges")
    except (OSError, subprocess.SubprocessError) as exc:
        raise PublishError(
            f"{root} is not a Git working tree: content is published from a commit"
        ) from exc
    if dirty.strip() and not allow_dirty:
        raise PublishError(
            "uncommitted changes in modules/, experiments/ or badges/: commit them first, "
            "so content.lock can point to the files that were published"
        )
    return commit


def _status(source: ItemSource) -> str:
    data = next(iter(source.files.values()))
    return str(data.get("status", "")) if isinstance(data, dict) else ""


def _changelog(source: ItemSource) -> str:
    data = next(iter(source.files.values()))
    log = data.get("changelog") or [{}]
    entry = log[0] if isinstance(log, list) and log else {}
    return json.dumps({k: v for k, v in entry.items() if k in ("fr-CA", "en")}, ensure_ascii=False)


def publish(session: Session, root: Path, *, allow_dirty: bool = False) -> PublishReport:
    """Record every item's current version as immutable and rewrite content.lock.

    Re-publishing an existing version with the same content does nothing; with other
    content it fails and says to bump the version. Commits.
    """
    result = load_catalog(root)
    if has_errors(result.diagnostics):
        raise PublishError(
            "the content has errors: run `lti-tool content check`", result.diagnostics
        )
    commit = git_commit(root, allow_dirty)
    lock = read_lock(root)
    kinds: dict[str, str] = {}
    published: list[str] = []
    unchanged: list[str] = []
    drafts: list[str] = []
    for source in all_sources(root):
        kinds[source.id] = source.kind
        if _status(source) == "draft":
            drafts.append(f"{source.id}@{source.version}")
            continue  # a draft is preview only: never served to learners
        version = parse_version(source.version)
        assert version is not None
        row = session.scalars(
            select(ContentVersion).where(
                ContentVersion.item_id == source.id, ContentVersion.version == source.version
            )
        ).first()
        sha = source.sha256
        if row is not None:
            if row.sha256 != sha:
                session.rollback()
                raise PublishError(
                    f"{source.id} {source.version} is already published with other content: "
                    "bump its version (and add a changelog entry)"
                )
            unchanged.append(f"{source.id}@{source.version}")
        else:
            session.add(
                ContentVersion(
                    item_id=source.id,
                    kind=source.kind,
                    version=source.version,
                    major=version.major,
                    minor=version.minor,
                    patch=version.patch,
                    sha256=sha,
                    source=source.to_json(),
                    git_commit=commit,
                    changelog=_changelog(source),
                )
            )
            published.append(f"{source.id}@{source.version}")
        entries = lock.setdefault(source.id, [])
        if not any(e["version"] == source.version for e in entries):
            entries.append({"version": source.version, "sha256": sha, "commit": commit})
    session.commit()
    write_lock(root, lock, kinds)
    return PublishReport(published, unchanged, commit, drafts)


def versions(session: Session, item_id: str) -> list[ContentVersion]:
    """Published versions of an item, newest first."""
    return list(
        session.scalars(
            select(ContentVersion)
            .where(ContentVersion.item_id == item_id)
            .order_by(
                ContentVersion.major.desc(),
                ContentVersion.minor.desc(),
                ContentVersion.patch.desc(),
            )
        )
    )


def resolve_pin(session: Session, item_id: str, pin: str) -> ContentVersion | None:
    """The published version a placement's pin selects: ``1`` = newest 1.x, ``1.2.0``
    exactly, or a PEP 440 range. None when nothing published matches."""
    ref = parse_reference(f"{item_id}@{pin}")
    if ref is None:
        return None
    for row in versions(session, item_id):
        if ref.matches(SemVer(row.major, row.minor, row.patch)):
            return row
    return None


def sync_from_lock(
    session: Session, root: Path, sources: list[ItemSource] | None = None
) -> list[str]:
    """Record the versions content.lock says were published, from the working tree.

    A fresh database (a new install, a test) learns the published versions whose files
    are here unchanged: an item whose current files hash to a locked version is that
    version. Older versions, whose files are only in Git history, are not recovered.
    Returns the ``id@version`` recorded. Commits.
    """
    lock = read_lock(root)
    recorded: list[str] = []
    for source in all_sources(root) if sources is None else sources:
        entry = next(
            (e for e in lock.get(source.id, []) if e.get("version") == source.version), None
        )
        if entry is None or entry.get("sha256") != source.sha256:
            continue
        exists = session.scalars(
            select(ContentVersion.id).where(
                ContentVersion.item_id == source.id, ContentVersion.version == source.version
            )
        ).first()
        if exists is not None:
            continue
        version = parse_version(source.version)
        assert version is not None
        session.add(
            ContentVersion(
                item_id=source.id,
                kind=source.kind,
                version=source.version,
                major=version.major,
                minor=version.minor,
                patch=version.patch,
                sha256=source.sha256,
                source=source.to_json(),
                git_commit=str(entry.get("commit", "")),
                changelog=_changelog(source),
            )
        )
        recorded.append(f"{source.id}@{source.version}")
    session.commit()
    return recorded
