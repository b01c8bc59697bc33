"""One broken-content fixture per diagnostic code: one change, exactly one diagnostic.

Every case copies the valid tree in ``fixtures/base/`` to a temporary folder, applies
ONE change and expects exactly one diagnostic, pinned down by (code, path, line, col).
Line and column are 1-based, as ``lti-tool content check`` prints them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lti_tool.content.catalog import load_catalog
from lti_tool.content.diagnostics import CODES

from .support import BASE, REPO, copy_tree, where

MOD = "modules/m01-essai/module.yaml"
FR = "modules/m01-essai/fr-CA.md"
EN = "modules/m01-essai/en.md"
EXP = "experiments/x01-essai/experiment.yaml"
BADGE = "badges/b01-essai/badge.yaml"
SVG = "badges/b01-essai/badge.svg"
ISSUER = "badges/issuer.yaml"

#: Codes without a fixture here, with why. The meta-test below keeps this list honest.
#: Codes whose exact-diagnostic fixture needs a Git repository and a published lock: they
#: live in tests/integration/test_publish.py (code, path, line and column asserted there).
PENDING = {
    "C032": "test_changed_content_needs_a_bump",
    "C033": "test_assessment_change_needs_a_major",
}

Edit = Callable[[Path], None]


def sub(rel: str, old: str, new: str) -> Edit:
    """Replace ``old`` (which must occur exactly once) by ``new`` in the file ``rel``."""

    def edit(root: Path) -> None:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur exactly once in {rel}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return edit


def sub_bytes(rel: str, old: str, new: bytes) -> Edit:
    """Replace ``old`` by raw bytes (to write something that is not UTF-8)."""

    def edit(root: Path) -> None:
        path = root / rel
        data = path.read_bytes()
        assert data.count(old.encode()) == 1, f"{old!r} must occur exactly once in {rel}"
        path.write_bytes(data.replace(old.encode(), new))

    return edit


def sub_lines(rel: str, first: int, last: int, new: str) -> Edit:
    """Replace lines ``first`` to ``last`` (1-based, inclusive) by ``new``."""

    def edit(root: Path) -> None:
        path = root / rel
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[first - 1 : last] = [new]
        path.write_text("".join(lines), encoding="utf-8")

    return edit


def both(first: Edit, second: Edit) -> Edit:
    """One change that touches two places of a file (moving a block)."""

    def edit(root: Path) -> None:
        first(root)
        second(root)

    return edit


def delete(rel: str) -> Edit:
    return lambda root: (root / rel).unlink()


def rename(rel: str, new_rel: str) -> Edit:
    def edit(root: Path) -> None:
        (root / rel).rename(root / new_rel)

    return edit


def mkdir(rel: str) -> Edit:
    return lambda root: (root / rel).mkdir()


def copy_item(rel: str, new_rel: str, change: Edit) -> Edit:
    """Copy an item folder, then change the copy."""

    def edit(root: Path) -> None:
        shutil.copytree(root / rel, root / new_rel)
        change(root)

    return edit


@dataclass(frozen=True)
class Case:
    """``id`` starts with the expected code: "C019" or "C019-extra-section"."""

    id: str
    edit: Edit
    path: str
    line: int
    col: int

    @property
    def code(self) -> str:
        return self.id.split("-", 1)[0]


CASES = [
    # -- YAML -----------------------------------------------------------------------------
    Case(
        "C001-unclosed-flow-list",
        sub(BADGE, "tags: [dataide, essai]", "tags: [dataide, essai"),
        BADGE,
        21,
        8,
    ),
    # libyaml reports the end of the stream one line past the file: kept on the last line.
    Case(
        "C001-unclosed-quote-at-end-of-file",
        sub(ISSUER, "email: essai@example.org", 'email: "essai@example.org'),
        ISSUER,
        9,
        26,
    ),
    Case(
        "C001-control-character",
        sub(ISSUER, "url: https://example.org/", "url: https://example.org/\x07"),
        ISSUER,
        8,
        26,
    ),
    Case(
        "C001-not-utf8",
        sub_bytes(BADGE, "Reconnaît", "Reconna\xeet".encode("latin-1")),
        BADGE,
        7,
        30,
    ),
    Case("C002-anchor", sub(BADGE, "tags: [", "tags: &t ["), BADGE, 20, 7),
    Case("C002-alias", sub(BADGE, "license: CC-BY-4.0", "license: *lic"), BADGE, 22, 10),
    Case(
        "C002-merge-key",
        sub(ISSUER, "email: essai@example.org\n", "email: essai@example.org\n<<: {url: x}\n"),
        ISSUER,
        10,
        1,
    ),
    Case(
        "C003",
        sub(MOD, "license: CC-BY-4.0\n", "license: CC-BY-4.0\nlicense: MIT\n"),
        MOD,
        76,
        1,
    ),
    # -- schema ---------------------------------------------------------------------------
    Case(
        "C004-key-with-a-line-break",
        sub(ISSUER, "email: essai@example.org\n", 'email: essai@example.org\n"a\\nb": 1\n'),
        ISSUER,
        10,
        1,
    ),
    Case("C004", sub(EXP, "team_based: true\n", "team_based: true\ncolour: green\n"), EXP, 11, 1),
    Case(
        "C005-missing-field",
        sub(MOD, "{learning_minutes: 20, self_check_minutes: 5}", "{learning_minutes: 20}"),
        MOD,
        8,
        11,
    ),
    Case(
        "C005-file-deliverable-without-accept",
        sub(EXP, "    accept: [png, pdf]\n", ""),
        EXP,
        22,
        5,
    ),
    Case(
        "C005-true-false-without-answer",
        sub(MOD, "      answer: false\n", ""),
        MOD,
        58,
        7,
    ),
    Case("C006", sub(MOD, "pass_ratio: 0.75", "pass_ratio: high"), MOD, 23, 15),
    Case(
        "C006-impossible-date",
        sub(MOD, "date: 2026-01-15", "date: 2026-13-15"),
        MOD,
        77,
        28,
    ),
    Case(
        "C006-tagged-number-that-is-not",
        sub(EXP, "max_mb: 10", "max_mb: !!int ten"),
        EXP,
        26,
        13,
    ),
    Case(
        "C006-section-objectives-not-a-list",
        sub(MOD, "{id: bilan, minutes: 5}", "{id: bilan, minutes: 5, objectives: 3}"),
        MOD,
        21,
        41,
    ),
    Case(
        "C006-question-objective-not-text",
        sub(MOD, "objective: o1", "objective: [o1]"),
        MOD,
        27,
        18,
    ),
    Case("C006-deliverables-not-a-list", sub_lines(EXP, 16, 32, "deliverables: 5\n"), EXP, 16, 15),
    Case("C007", sub(EXP, "status: stable", "status: published"), EXP, 4, 9),
    Case(
        "C007-min-words-above-max",
        sub(EXP, "{min_words: 100, max_words: 500}", "{min_words: 600, max_words: 500}"),
        EXP,
        20,
        13,
    ),
    Case("C008", sub(MOD, 'en: "Dated names."', "en: No"), MOD, 15, 36),
    Case("C009", sub(MOD, "coordination, benevoles]", "coordination, Benevoles]"), MOD, 9, 26),
    # -- ids ------------------------------------------------------------------------------
    Case(
        "C010-id-reused-across-kinds",
        copy_item(
            "experiments/x01-essai",
            "experiments/m01-essai",
            sub("experiments/m01-essai/experiment.yaml", "id: x01-essai", "id: m01-essai"),
        ),
        "experiments/m01-essai/experiment.yaml",
        2,
        5,
    ),
    Case(
        "C011",
        rename("badges/b01-essai", "badges/b01-autre"),
        "badges/b01-autre/badge.yaml",
        2,
        5,
    ),
    Case(
        "C012",
        sub(
            BADGE, """{fr-CA: "Badge d'essai", en: "Test badge"}""", """{fr-CA: "Badge d'essai"}"""
        ),
        BADGE,
        6,
        7,
    ),
    # Not also C035 (the changelog's 1.0.0 differs from "1.0"): one problem, one diagnostic.
    Case("C013", sub(MOD, "\nversion: 1.0.0\n", "\nversion: 1.0\n"), MOD, 3, 10),
    Case(
        "C013-older-changelog-entry",
        sub(
            EXP,
            "changelog:\n  - {version: 1.0.0, date: 2026-01-15, fr-CA: Première version., "
            "en: First version.}\n",
            "changelog:\n  - {version: 1.0.0, date: 2026-01-15, fr-CA: Première version., "
            "en: First version.}\n  - {version: 0.9, date: 2026-01-01, fr-CA: Essai., "
            "en: Trial.}\n",
        ),
        EXP,
        56,
        15,
    ),
    # -- references -----------------------------------------------------------------------
    Case("C014", sub(MOD, "x01-essai@1", "x01-essai"), MOD, 73, 20),
    Case(
        "C036-malformed-reference",
        sub(BADGE, "items: [m01-essai@1]", "items: [m01-essai]"),
        BADGE,
        17,
        37,
    ),
    Case("C014-not-an-ascii-digit", sub(MOD, "x01-essai@1", "x01-essai@²"), MOD, 73, 20),
    Case("C015-badge-rule", sub(BADGE, "[m01-essai@1]", "[m09-absent@1]"), BADGE, 17, 37),
    Case(
        "C015-section-objective",
        sub(MOD, "minutes: 5, objectives: [o2]}", "minutes: 5, objectives: [o3]}"),
        MOD,
        20,
        45,
    ),
    Case(
        "C015-issuer",
        sub(BADGE, "issuer: dataide-essai", "issuer: centraide-dataide"),
        BADGE,
        12,
        9,
    ),
    Case("C015-issuer-file-missing", delete(ISSUER), BADGE, 12, 9),
    Case("C016", sub(MOD, "x01-essai@1", "x01-essai@2"), MOD, 73, 20),
    Case("C016-range", sub(EXP, "[m01-essai@1]", '["m01-essai@>=1.1,<2"]'), EXP, 9, 18),
    # -- module bodies --------------------------------------------------------------------
    Case("C017-body", delete(EN), EN, 1, 1),
    Case("C017-module-yaml", mkdir("modules/m02-vide"), "modules/m02-vide/module.yaml", 1, 1),
    Case(
        "C017-body-not-utf8",
        sub_bytes(FR, "l'équipe", "l'\xe9quipe".encode("latin-1")),
        FR,
        7,
        31,
    ),
    Case("C018", sub(FR, "lang: fr-CA", "lang: fr"), FR, 1, 1),
    # Only C019 in fr-CA.md: not also C023 "section ids differ from fr-CA.md" in en.md.
    Case("C019", sub(FR, "{#bilan}", "{#synthese}"), FR, 32, 1),
    Case(
        "C019-extra-section",
        sub(
            EN, "Review access every season.\n", "Review access every season.\n\n## More {#more}\n"
        ),
        EN,
        36,
        1,
    ),
    Case("C020", sub(FR, "::: callout", "::: encadre"), FR, 15, 5),
    Case("C020-no-space", sub(FR, "::: callout", ":::encadre"), FR, 15, 4),
    Case(
        "C020-self-check-without-id",
        sub(
            FR,
            "Révisez les accès à chaque saison.\n",
            "Révisez les accès.\n\n::: self-check\n:::\n",
        ),
        FR,
        36,
        5,
    ),
    Case(
        "C021",
        sub(FR, "::: self-check q3\n:::\n", "::: self-check q3\n:::\n\n::: self-check q9\n:::\n"),
        FR,
        39,
        16,
    ),
    Case(
        "C021-extra-spaces",
        sub(
            FR, "::: self-check q3\n:::\n", "::: self-check q3\n:::\n\n:::  self-check   q9\n:::\n"
        ),
        FR,
        39,
        19,
    ),
    Case(
        "C022-placed-twice",
        sub(FR, "::: self-check q4\n:::\n", "::: self-check q4\n:::\n\n::: self-check q1\n:::\n"),
        FR,
        32,
        16,
    ),
    Case("C022-not-placed", sub(EN, "::: self-check q4\n:::\n\n", ""), EN, 1, 1),
    Case(
        "C023-image-count",
        sub(
            EN,
            "![Diagram of the common space](media/schema.svg)\n",
            "![Diagram of the common space](media/schema.svg)\n\n![Again](media/schema.svg)\n",
        ),
        EN,
        1,
        1,
    ),
    Case(
        "C023-self-check-in-another-section",
        both(
            sub(EN, "::: self-check q4\n:::\n\n", ""),
            sub(
                EN, "::: self-check q3\n:::\n", "::: self-check q3\n:::\n\n::: self-check q4\n:::\n"
            ),
        ),
        EN,
        1,
        1,
    ),
    Case(
        "C023-experiment-block-count",
        sub(EN, "Review access every season.\n", "Review.\n\n::: experiment x01-essai\n:::\n"),
        EN,
        1,
        1,
    ),
    # -- questions and rubric -------------------------------------------------------------
    Case(
        "C024-single-with-two-correct",
        sub(
            MOD,
            '- id: b\n          fr-CA: "PV',
            '- id: b\n          correct: true\n          fr-CA: "PV',
        ),
        MOD,
        30,
        9,
    ),
    Case(
        "C024-single-with-none-correct",
        sub(MOD, 'correct: true\n          fr-CA: "2026', 'correct: false\n          fr-CA: "2026'),
        MOD,
        30,
        9,
    ),
    Case("C025", sub(EXP, "{id: l1, points: 2,", "{id: l1, points: 4,"), EXP, 39, 9),
    Case("C026", sub(EXP, "total_points: 7", "total_points: 8"), EXP, 47, 17),
    Case("C027", sub(EXP, "pass_points: 5", "pass_points: 9"), EXP, 48, 16),
    # -- images and links -----------------------------------------------------------------
    Case("C028", sub(FR, "![Schéma de l'espace commun]", "![ ]"), FR, 9, 1),
    Case("C029", sub(FR, "(media/schema.svg)", "(media/plan.svg)"), FR, 9, 1),
    Case("C030-anchor", sub(FR, "(#partager)", "(#partage)"), FR, 13, 37),
    Case(
        "C030-file",
        sub(FR, "chaque saison.", "chaque saison ([annexe](annexe.md))."),
        FR,
        34,
        36,
    ),
    Case("C030-file-name-too-long", sub(FR, "(#partager)", f"({'x' * 300}.md)"), FR, 13, 37),
    Case("C031", sub(FR, "https://example.org/guide", "http://example.org/guide"), FR, 24, 47),
    Case(
        "C031-image",
        sub(FR, "(media/schema.svg)", "(http://example.org/schema.svg)"),
        FR,
        9,
        1,
    ),
    # -- blocks ---------------------------------------------------------------------------
    Case(
        "C034-unclosed",
        sub(FR, "::: experiment x01-essai\n:::\n", "::: experiment x01-essai\n"),
        FR,
        39,
        1,
    ),
    Case(
        "C034-closes-nothing",
        sub(FR, "chaque saison.\n", "chaque saison.\n:::\n"),
        FR,
        35,
        1,
    ),
    Case("C035", sub(MOD, "{version: 1.0.0, date", "{version: 0.9.0, date"), MOD, 77, 15),
    # -- badges ---------------------------------------------------------------------------
    Case("C036", sub(BADGE, "role: coordinator", "role: admin"), BADGE, 19, 33),
    Case(
        "C036-unknown-rule-type",
        sub(BADGE, "- manual_approval:", "- coordinator_approval:"),
        BADGE,
        19,
        9,
    ),
    Case(
        "C036-unknown-argument",
        sub(BADGE, "note_required: true", "note: true"),
        BADGE,
        19,
        46,
    ),
    Case("C036-negative-points", sub(BADGE, "min_points: 5", "min_points: -5"), BADGE, 18, 60),
    Case(
        "C036-must-include-not-text",
        sub(
            BADGE,
            "- experiment_passed: {item: x01-essai@1, min_points: 5}",
            "- experiments_passed: {items: [x01-essai@1], must_include: [{x: 1}]}",
        ),
        BADGE,
        18,
        66,
    ),
    Case("C037-script", sub(SVG, "</svg>", "<script>alert(1)</script></svg>"), BADGE, 9, 9),
    Case("C037-missing", delete(SVG), BADGE, 9, 9),
    Case(
        "C037-external-image",
        sub(SVG, "</svg>", '<image href="https://example.org/x.png"/></svg>'),
        BADGE,
        9,
        9,
    ),
    Case("C037-no-role", sub(SVG, ' role="img"', ""), BADGE, 9, 9),
    Case("C037-no-desc", sub(SVG, '  <desc id="d">Un cercle vert.</desc>\n', ""), BADGE, 9, 9),
    Case(
        "C037-not-square", sub(SVG, 'viewBox="0 0 512 512"', 'viewBox="0 0 512 256"'), BADGE, 9, 9
    ),
    Case(
        "C037-file-name-too-long",
        sub(BADGE, "file: badge.svg", f"file: {'x' * 300}.svg"),
        BADGE,
        9,
        9,
    ),
    # -- headings -------------------------------------------------------------------------
    Case(
        "C038-heading-without-id",
        sub(FR, "chaque saison.\n", "chaque saison.\n\n## Annexe\n"),
        FR,
        36,
        1,
    ),
    Case("C038-h1", sub(EN, "## Why {#pourquoi}\n", "# Title\n\n## Why {#pourquoi}\n"), EN, 5, 1),
    Case("C039", sub(FR, "::: experiment x01-essai", "::: experiment x02-autre"), FR, 39, 16),
    Case(
        "C040",
        sub(MOD, '- id: b\n          fr-CA: "PV', '- id: a\n          fr-CA: "PV'),
        MOD,
        35,
        15,
    ),
    # -- warnings -------------------------------------------------------------------------
    Case("C041", sub(MOD, "{id: bilan, minutes: 5}", "{id: bilan, minutes: 10}"), MOD, 8, 30),
    Case(
        "C042",
        sub(
            EN,
            "Review access every season.\n",
            "Review access every season.\n\n" + "Remove the access of people who left. " * 8,
        ),
        EN,
        1,
        1,
    ),
]


def test_base_fixture_is_valid() -> None:
    result = load_catalog(BASE)
    assert result.diagnostics == []
    assert result.item_count == 3
    catalog = result.catalog
    assert set(catalog.modules) == {"m01-essai"}
    assert set(catalog.experiments) == {"x01-essai"}
    assert set(catalog.badges) == {"b01-essai"}
    assert catalog.issuer is not None and catalog.issuer.id == "dataide-essai"
    module = catalog.modules["m01-essai"]
    assert {q.type for q in module.questions} == {"single", "multiple", "true_false", "short_text"}
    assert len(module.sections) == 4 and [b.lang for b in module.bodies] == ["fr-CA", "en"]


def test_shipped_curriculum_has_no_error_and_no_warning() -> None:
    result = load_catalog(REPO)
    assert [d.text() for d in result.diagnostics] == []
    assert result.item_count == len(result.catalog.items()) > 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_change_gives_exactly_one_diagnostic(case: Case, tmp_path: Path) -> None:
    root = copy_tree(BASE, tmp_path / "content")
    case.edit(root)
    result = load_catalog(root)
    assert [where(d) for d in result.diagnostics] == [
        (case.code, case.path, case.line, case.col)
    ], "\n".join(d.text() for d in result.diagnostics)
    (diagnostic,) = result.diagnostics
    assert diagnostic.message.strip() and diagnostic.message.splitlines() == [diagnostic.message]
    assert diagnostic.severity == CODES[case.code][0]


def test_every_code_has_a_fixture_or_a_reason() -> None:
    covered = {c.code for c in CASES}
    assert set(PENDING) <= set(CODES), "PENDING names codes that do not exist"
    assert not covered & set(PENDING), "a PENDING code has a fixture now: remove it from PENDING"
    from tests.integration import test_publish

    assert all(callable(getattr(test_publish, name, None)) for name in PENDING.values())
    assert covered <= set(CODES)
    assert set(CODES) - set(PENDING) - covered == set(), "codes without a fixture"


def test_case_ids_are_unique_and_name_a_code() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.code in CODES for c in CASES)
