"""Published content: versions recorded from content.lock, items built from stored
sources, pins, media, and the Deep Linking picker (on SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lti_tool.content.catalog import load_catalog
from lti_tool.content.lock import ItemSource, all_sources, read_lock
from lti_tool.content.model import Catalog, Experiment, Module, Text
from lti_tool.content.versions import SemVer, parse_version
from lti_tool.db import get_db
from lti_tool.domain import grades as g
from lti_tool.domain.progress import normalize_answer
from lti_tool.models import ContentVersion
from lti_tool.services.content import sync_from_lock
from lti_tool.services.picker import (
    RUBRIC_TAG,
    PickerItem,
    choose,
    filter_items,
    picker_items,
)
from lti_tool.services.placements import DL_KEY, ITEM_KEY, PIN_KEY
from lti_tool.services.published import PublishedContent

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def catalog() -> Catalog:
    return load_catalog(REPO).catalog


@functools.cache
def sources() -> dict[str, ItemSource]:
    return {s.id: s for s in all_sources(REPO)}


def placeable() -> list[Module | Experiment]:
    return [*catalog().modules.values(), *catalog().experiments.values()]


def session_of(app: Flask) -> Session:
    return get_db(app).session_factory()


def fresh(root: Path = REPO) -> PublishedContent:
    """A new per-process view (no cached version lists)."""
    return PublishedContent(root)


def add_version(
    session: Session,
    item_id: str,
    version: str,
    *,
    status: str | None = None,
    new_id: str | None = None,
    media: dict[str, str] | None = None,
    **yaml_changes: Any,
) -> None:
    """Record another published version of ``item_id`` (copied from its stored row)."""
    row = session.scalars(
        select(ContentVersion)
        .where(ContentVersion.item_id == item_id)
        .order_by(ContentVersion.id)
        .limit(1)
    ).one()
    data = json.loads(row.source)
    yaml_name = f"{row.kind}.yaml"
    raw = data["files"][yaml_name]
    raw["version"] = version
    if status is not None:
        raw["status"] = status
    if new_id is not None:
        raw["id"] = new_id
    raw.update(yaml_changes)
    if media is not None:
        data["media"] = media
    semver = parse_version(version)
    assert semver is not None
    session.add(
        ContentVersion(
            item_id=new_id or item_id,
            kind=row.kind,
            version=version,
            major=semver.major,
            minor=semver.minor,
            patch=semver.patch,
            sha256=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
            source=json.dumps(data, ensure_ascii=False),
            git_commit="0" * 40,
            changelog=json.dumps({"fr-CA": f"Version {version}.", "en": f"Version {version}."}),
        )
    )
    session.commit()


# -- sync_from_lock --------------------------------------------------------------------------


def test_the_app_records_every_locked_version(backend_app: Flask) -> None:
    lock = read_lock(REPO)
    with session_of(backend_app) as session:
        rows = {(r.item_id, r.version): r for r in session.scalars(select(ContentVersion))}
    expected = {(item_id, e["version"]): e for item_id, entries in lock.items() for e in entries}
    assert set(rows) == set(expected)
    for key, row in rows.items():
        source = sources()[row.item_id]
        version = parse_version(row.version)
        assert version is not None
        assert (row.sha256, row.git_commit) == (expected[key]["sha256"], expected[key]["commit"])
        assert (row.kind, row.major, row.minor, row.patch) == (
            source.kind,
            version.major,
            version.minor,
            version.patch,
        )
        assert json.loads(row.source) == json.loads(source.to_json())


def test_sync_from_lock_on_an_empty_table_and_again(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        session.execute(delete(ContentVersion))
        session.commit()
        recorded = sync_from_lock(session, REPO)
        assert sorted(recorded) == sorted(f"{s.id}@{s.version}" for s in sources().values())
        assert sync_from_lock(session, REPO) == []
        count = session.scalar(select(func.count()).select_from(ContentVersion))
        assert count == len(sources())


def test_sync_from_lock_skips_unpublished_files(backend_app: Flask) -> None:
    m01 = sources()["m01-maturite"]
    changed_files = json.loads(json.dumps(m01.files))
    changed_files["module.yaml"]["title"]["en"] = "Edited without a version bump"
    edited = replace(m01, files=changed_files)
    bumped = replace(m01, version="1.1.0")
    with session_of(backend_app) as session:
        session.execute(delete(ContentVersion).where(ContentVersion.item_id == m01.id))
        session.commit()
        assert sync_from_lock(session, REPO, [edited, bumped]) == []
        assert sync_from_lock(session, REPO, [m01]) == [f"{m01.id}@{m01.version}"]


# -- PublishedContent.item / versions / resolve -----------------------------------------------


@pytest.mark.parametrize("item", placeable(), ids=lambda i: i.id)
def test_a_published_item_is_the_working_tree_item(app: Flask, item: Module | Experiment) -> None:
    published = fresh()
    with session_of(app) as session:
        built = published.item(session, item.id, str(item.version))
        assert built is not None
        assert published.item(session, item.id, str(item.version)) is built  # built once
    assert (built.id, built.version, built.status, built.kind) == (
        item.id,
        item.version,
        item.status,
        item.kind,
    )
    if isinstance(item, Module):
        assert isinstance(built, Module)
        assert built.questions == item.questions
        assert built.sections == item.sections
        assert built.pass_ratio == item.pass_ratio
        assert {b.lang: b.markdown for b in built.bodies} == {
            b.lang: b.markdown for b in item.bodies
        }
        assert set(item.languages) == {b.lang for b in built.bodies}
    assert built == item


def test_item_of_an_unknown_version_or_a_badge_is_none(app: Flask) -> None:
    published = fresh()
    badge = next(iter(catalog().badges.values()))
    with session_of(app) as session:
        assert published.item(session, "m01-maturite", "9.9.9") is None
        assert published.item(session, "m99-nothing", "1.0.0") is None
        assert published.item(session, badge.id, str(badge.version)) is None


@pytest.mark.parametrize("item", placeable()[:3], ids=lambda i: i.id)
def test_pins_resolve_to_the_working_tree_version(app: Flask, item: Module | Experiment) -> None:
    published = fresh()
    version, major = item.version, item.version.major
    with session_of(app) as session:
        for pin in (str(major), str(version), f">={major},<{major + 1}", f"~={major}.0"):
            found = published.resolve(session, item.id, pin)
            assert found is not None and found.version == version, pin
            assert (found.item_id, found.kind, found.major) == (item.id, item.kind, major)
        for pin in (str(major + 1), f"{major}.{version.minor + 1}.0", f">{version}", "latest", ""):
            assert published.resolve(session, item.id, pin) is None, pin


def test_pins_among_several_versions(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        add_version(session, "m01-maturite", "1.1.0")
        add_version(session, "m01-maturite", "1.10.2")
        add_version(session, "m01-maturite", "2.0.0")
        published = fresh()
        versions = [str(v.version) for v in published.versions(session, "m01-maturite")]
        assert versions == ["2.0.0", "1.10.2", "1.1.0", "1.0.0"]  # numeric, not text, order
        cases = {
            "1": "1.10.2",
            "1.0.0": "1.0.0",
            "1.1.0": "1.1.0",
            ">=1,<2": "1.10.2",
            ">=1.0,<1.5": "1.1.0",
            "2": "2.0.0",
            ">=1": "2.0.0",
        }
        for pin, expected in cases.items():
            found = published.resolve(session, "m01-maturite", pin)
            assert found is not None and str(found.version) == expected, pin
        assert published.resolve(session, "m01-maturite", "3") is None
        newest = published.versions(session, "m01-maturite")[0]
        assert str(newest.version) == "2.0.0"
        assert newest.changelog == {"fr-CA": "Version 2.0.0.", "en": "Version 2.0.0."}
        built = published.item(session, "m01-maturite", "1.10.2")
        assert built is not None and built.version == SemVer(1, 10, 2)


def test_version_lists_are_cached_until_forgotten(app: Flask) -> None:
    published = fresh()
    with session_of(app) as session:
        before = published.versions(session, "m02-collaborer")
        add_version(session, "m02-collaborer", "1.0.1")
        assert published.versions(session, "m02-collaborer") == before
        published.forget_versions()
        after = published.versions(session, "m02-collaborer")
        assert [str(v.version) for v in after] == ["1.0.1", *(str(v.version) for v in before)]


# -- media_file ------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_media_file_serves_only_published_bytes_inside_the_item(app: Flask, tmp_path: Path) -> None:
    root = tmp_path / "content"
    folder = root / "modules" / "m99-media"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "ok.png").write_bytes(b"published bytes")
    (folder / "img" / "changed.png").write_bytes(b"bytes changed after publishing")
    (root / "modules" / "escape.png").write_bytes(b"outside the item")
    (tmp_path / "secret.txt").write_bytes(b"outside the content")
    (folder / "img" / "link.png").symlink_to(tmp_path / "secret.txt")
    media = {
        "img/ok.png": _sha(b"published bytes"),
        "img/changed.png": _sha(b"bytes as published"),
        "../escape.png": _sha(b"outside the item"),
        "img/../../escape.png": _sha(b"outside the item"),
        "img/link.png": _sha(b"outside the content"),
        "img/absent.png": _sha(b"never written"),
    }
    published = fresh(root)
    with session_of(app) as session:
        add_version(session, "m01-maturite", "1.0.0", new_id="m99-media", media=media)
        assert published.media_file("m99-media", "1.0.0", "img/ok.png") is None  # not built yet
        assert published.item(session, "m99-media", "1.0.0") is not None

    served = published.media_file("m99-media", "1.0.0", "img/ok.png")
    assert served == (folder / "img" / "ok.png").resolve()
    for rel in media.keys() - {"img/ok.png"}:
        assert published.media_file("m99-media", "1.0.0", rel) is None, rel
    assert published.media_file("m99-media", "1.0.0", "img/unlisted.png") is None
    assert published.media_file("m99-media", "2.0.0", "img/ok.png") is None


# -- picker_items / filter_items / choose ------------------------------------------------------


def test_the_picker_lists_every_published_module_and_experiment(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        items = picker_items(session, fresh())
    by_id = {i.id: i for i in items}
    assert sorted(by_id) == sorted(i.id for i in placeable())
    assert not by_id.keys() & set(catalog().badges)
    assert items == sorted(items, key=lambda i: (i.kind, i.id))
    for source in placeable():
        item = by_id[source.id]
        assert (item.kind, item.version, item.versions) == (
            source.kind,
            source.version,
            (source.version,),
        )
        assert (item.title, item.summary, item.status) == (
            source.title,
            source.summary,
            source.status,
        )
        if isinstance(source, Module):
            assert item.minutes == source.learning_minutes + source.self_check_minutes
            assert (item.score_maximum, item.tag) == (1.0, g.COMPLETION_TAG)
            assert item.objectives == tuple(o.text for o in source.objectives)
        else:
            assert (item.weeks, item.effort_hours) == (source.weeks, source.effort_hours)
            assert item.score_maximum == float(source.rubric.total_points)
            assert item.tag == RUBRIC_TAG


def test_the_picker_hides_items_whose_newest_version_is_draft_or_retired(
    backend_app: Flask,
) -> None:
    with session_of(backend_app) as session:
        add_version(session, "m01-maturite", "2.0.0", status="draft")
        add_version(session, "x01-autodiagnostic", "1.1.0", status="retired")
        add_version(session, "m02-collaborer", "0.9.0", status="draft")  # older: no effect
        add_version(session, "m03-cyber", "1.0.1", status="pilot")
        items = {i.id: i for i in picker_items(session, fresh())}
    assert "m01-maturite" not in items and "x01-autodiagnostic" not in items
    assert items["m02-collaborer"].version == catalog().modules["m02-collaborer"].version
    assert [str(v) for v in items["m02-collaborer"].versions][-1] == "0.9.0"
    assert (items["m03-cyber"].status, str(items["m03-cyber"].version)) == ("pilot", "1.0.1")
    assert len(items) == len(placeable()) - 2


def _query_word(text: str) -> str:
    """The longest word of ``text`` with an accent, else the longest word."""
    words = [w.strip(".,;:!?«»\"'()") for w in text.split()]
    accented = [w for w in words if normalize_answer(w) != w.lower()]
    return max(accented or words, key=len)


@pytest.mark.parametrize("lang", ["fr-CA", "en"])
def test_filter_items_by_words_of_either_language(backend_app: Flask, lang: str) -> None:
    with session_of(backend_app) as session:
        items = picker_items(session, fresh())
    for item in items:
        word = _query_word(item.title.get(lang))
        # Without accents, in capitals, with a word of the other language's summary.
        other = "en" if lang == "fr-CA" else "fr-CA"
        query = f"  {normalize_answer(word).upper()}   {_query_word(item.summary.get(other))} "
        found = filter_items(items, query, "", "")
        assert item in found, (item.id, query)
        wanted = normalize_answer(query).split()
        for hit in found:
            hay = normalize_answer(
                " ".join(
                    [
                        hit.id,
                        *hit.title.as_dict().values(),
                        *hit.summary.as_dict().values(),
                        *(t for o in hit.objectives for t in o.as_dict().values()),
                    ]
                )
            )
            assert all(w in hay for w in wanted), (hit.id, query)


def test_filter_items_finds_ids_and_objectives(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        items = picker_items(session, fresh())
    module = next(i for i in items if i.kind == "module")
    assert module in filter_items(items, module.id.upper(), "", "")
    objective = module.objectives[0].get("en")
    assert module in filter_items(items, _query_word(objective), "module", "en")
    assert filter_items(items, "zzqx-nowhere", "", "") == []
    assert filter_items(items, "", "", "") == items
    assert filter_items(items, "  ...  ", "", "") == items


@pytest.mark.parametrize("kind", ["module", "experiment"])
def test_filter_items_by_kind(backend_app: Flask, kind: str) -> None:
    with session_of(backend_app) as session:
        items = picker_items(session, fresh())
    found = filter_items(items, "", kind, "")
    assert found and all(i.kind == kind for i in found)
    assert len(found) == sum(1 for i in items if i.kind == kind)
    assert filter_items(items, "", "badge", "") == items  # an unknown kind filters nothing


def test_filter_items_by_language(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        add_version(session, "m01-maturite", "1.0.0", new_id="m99-francais", languages=["fr-CA"])
        items = picker_items(session, fresh())
    french_only = next(i for i in items if i.id == "m99-francais")
    assert french_only.languages == ("fr-CA",)
    assert french_only.title.as_dict().keys() == {"fr-CA"}
    english = filter_items(items, "", "", "en")
    assert french_only not in english and len(english) == len(items) - 1
    assert french_only in filter_items(items, "", "", "fr-CA")
    assert filter_items(items, "", "", "de") == items
    # The English title falls back to French for a French-only item.
    assert french_only.title.get("en") == french_only.title.get("fr-CA")


def _picker_item(versions: list[str], item_id: str = "m01-maturite") -> PickerItem:
    semvers = sorted((v for v in map(parse_version, versions) if v is not None), reverse=True)
    title = Text((("fr-CA", "Titre"), ("en", "Title")))
    return PickerItem(
        id=item_id,
        kind="module",
        status="stable",
        languages=("fr-CA", "en"),
        version=semvers[0],
        versions=tuple(semvers),
        title=title,
        summary=Text((("fr-CA", "Résumé"), ("en", "Summary"))),
        objectives=(),
        minutes=70,
        weeks=None,
        effort_hours=None,
        score_maximum=1.0,
        tag=g.COMPLETION_TAG,
    )


@pytest.mark.parametrize(
    ("pin", "major"),
    [("1", 1), ("1.2.0", 1), (">=1,<2", 1), ("2", 2), ("2.0.0", 2), (">=1", 2), ("~=1.0", 1)],
)
def test_choose_names_the_column_by_major(pin: str, major: int) -> None:
    item = _picker_item(["1.0.0", "1.2.0", "2.0.0"])
    chosen = choose(item, pin, "en")
    assert chosen is not None
    assert chosen.resource_id == g.resource_id(item.id, major) == f"{item.id}@{major}"
    assert (chosen.pin, chosen.title, chosen.label, chosen.text) == (
        pin,
        "Title",
        "Title",
        "Summary",
    )


@pytest.mark.parametrize("pin", ["3", "1.1.0", "<1", "", "latest", "1.x", "v1"])
def test_choose_a_pin_that_matches_nothing(pin: str) -> None:
    assert choose(_picker_item(["1.0.0", "1.2.0", "2.0.0"]), pin, "fr-CA") is None


def test_choose_custom_keys(backend_app: Flask) -> None:
    with session_of(backend_app) as session:
        items = picker_items(session, fresh())
    item = next(i for i in items if i.kind == "experiment")
    pin = str(item.version.major)
    first, second = choose(item, pin, "fr-CA"), choose(item, pin, "fr-CA")
    assert first is not None and second is not None
    assert set(first.custom) == {ITEM_KEY, PIN_KEY, DL_KEY}
    assert all(key == key.lower() for key in first.custom)
    assert (first.custom[ITEM_KEY], first.custom[PIN_KEY]) == (item.id, pin)
    assert str(uuid.UUID(first.custom[DL_KEY])) == first.custom[DL_KEY]
    assert first.custom[DL_KEY] != second.custom[DL_KEY]  # one per Deep Linking item
    assert first.title == item.title.get("fr-CA")
    assert first.resource_id == g.resource_id(item.id, item.version.major)
