"""Self-check answers and module progress (``lti_tool.domain.progress``): pure rules."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.content.catalog import load_catalog
from lti_tool.content.model import Module, Option, Question, Section, Text
from lti_tool.domain.progress import (
    EMPTY,
    PARTIAL,
    RIGHT,
    WRONG,
    AnswerRecord,
    Progress,
    Verdict,
    check_answer,
    needed_right,
    normalize_answer,
    resume_section,
    summarize,
)

REPO = Path(__file__).resolve().parents[2]
SELF_CHECK_JS = REPO / "lti_tool" / "web" / "static" / "js" / "self-check.js"


@functools.cache
def m01() -> Module:
    """The shipped module m01-maturite, as the catalog loads it."""
    return load_catalog(REPO).catalog.modules["m01-maturite"]


def text(value: str) -> Text:
    return Text((("fr-CA", value), ("en", value)))


def choice_question(qtype: str, key: set[str], ids: str = "abcd", counts: bool = True) -> Question:
    return Question(
        id=f"{qtype}-{''.join(sorted(key))}",
        type=qtype,
        prompt=text("?"),
        counts=counts,
        options=tuple(Option(i, text(i), i in key, text("")) for i in ids),
    )


def true_false(answer: bool, qid: str = "tf") -> Question:
    return Question(id=qid, type="true_false", prompt=text("?"), answer=answer)


def short_text(accepted: dict[str, tuple[str, ...]], qid: str = "st") -> Question:
    return Question(id=qid, type="short_text", prompt=text("?"), accepted=tuple(accepted.items()))


def right_values(question: Question, lang: str = "fr-CA") -> list[str]:
    """Form values that answer ``question`` right, derived from its key."""
    if question.type in ("single", "multiple"):
        return [o.id for o in question.options if o.correct]
    if question.type == "true_false":
        return [str(bool(question.answer)).lower()]
    return [dict(question.accepted)[lang][0]]


def wrong_values(question: Question) -> list[str]:
    if question.type in ("single", "multiple"):
        return [o.id for o in question.options if not o.correct][:1]
    if question.type == "true_false":
        return [str(not question.answer).lower()]
    return ["certainly not an accepted answer"]


# -- normalize_answer and self-check.js ----------------------------------------------------

#: JavaScript's ``\s`` (ECMAScript WhiteSpace and LineTerminator).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def js_normalize(value: str) -> str:
    """A line-by-line transliteration of ``normalize`` in self-check.js."""
    value = str(value or "").lower()
    value = re.sub("[\u0300-\u036f]", "", unicodedata.normalize("NFD", value))
    value = re.sub("[\u2019\u2018`]", "'", value)
    value = re.sub(f"[{_JS_SPACE}\u00a0]+", " ", value)
    return re.sub(
        f"^[{_JS_SPACE}\"'«»\u201c\u201d\u201e]+|[{_JS_SPACE}\"'«»\u201c\u201d\u201e.!?;:,]+\\Z",
        "",
        value,
    )


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("Café", "cafe"),
        ("ÉCOLE", "école"),
        ("e\u0301cole", "\u00e9cole"),  # NFD and NFC forms of the same word
        ("Œuvre", "œuvre"),
        ("  deux   mots  ", "deux mots"),
        ("deux\u00a0mots", "deux mots"),
        ("deux\t\nmots", "deux mots"),
        ("l\u2019équipe", "l'equipe"),
        ("l\u2018équipe", "l'equipe"),
        ("l`équipe", "l'equipe"),
        ("« sauvegarde »", "sauvegarde"),
        ('"backup"', "backup"),
        ("'backup'", "backup"),
        ("sauvegarde.", "sauvegarde"),
        ("sauvegarde !", "sauvegarde"),
        ("sauvegarde?!;:,", "sauvegarde"),
        ("Données Québec.", "donnees quebec"),
    ],
)
def test_normalize_answer_equates(given: str, key: str) -> None:
    assert normalize_answer(given) == normalize_answer(key)
    assert normalize_answer(given) == js_normalize(given)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("l'equipe", "lequipe"),  # inner apostrophes are kept
        ("4,5:1", "4,5"),  # inner punctuation is kept
        ("co-op", "coop"),
        (".net", "net"),  # the left edge strips spaces and quotes only
        ("!oui", "oui"),
        ("deux mots", "deuxmots"),  # spaces collapse, they do not vanish
    ],
)
def test_normalize_answer_keeps_apart(given: str, key: str) -> None:
    assert normalize_answer(given) != normalize_answer(key)
    assert js_normalize(given) != js_normalize(key)


@pytest.mark.parametrize("blank", ["", "   ", "\u00a0", "«»", "\"'", "...", " ?! ", "« . »"])
def test_normalize_answer_of_punctuation_only_is_empty(blank: str) -> None:
    assert normalize_answer(blank) == ""


#: What learners type in French and English answers (letters, accents, quotes, punctuation).
_FRENCH_TEXT = st.text(
    alphabet=st.sampled_from(
        list("aAeEiIoOuUcCnNyYzZ019 ")
        + list("éÉèÈêÊëàÀâÂçÇîÎïôÔœŒùûüÿæ")
        + list("\u0301\u0300\u0327")  # combining acute, grave, cedilla
        + list("'\u2019\u2018`\"«».!?;:,-\t\n\u00a0\u202f")
    ),
    max_size=24,
)


@given(_FRENCH_TEXT)
def test_normalize_answer_agrees_with_self_check_js(value: str) -> None:
    assert normalize_answer(value) == js_normalize(value)


@given(st.text(max_size=30))
def test_normalize_answer_output_is_canonical(value: str) -> None:
    out = normalize_answer(value)
    assert normalize_answer(out) == out
    assert "  " not in out
    # Spaces and accents as JavaScript sees them (the preview grades with self-check.js).
    assert not re.match(f"[{_JS_SPACE}]", out) and not re.search(f"[{_JS_SPACE}]\\Z", out)
    assert not re.search("[\u0300-\u036f]", out)


#: Inputs on which normalize_answer and self-check.js once disagreed (found by running both).
_PARITY_GAPS = [
    "\ufeffoui",  # BOM: JS \s strips it, Python's \s does not
    "oui\u0085",  # NEL: Python's \s strips it, JS \s does not
    "a\u034fb",  # combining grapheme joiner (in U+0300-036F, combining class 0): JS drops it
    "\u304c",  # hiragana GA: Python drops the dakuten (combining, outside U+0300-036F)
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_transliteration_matches_the_shipped_script() -> None:
    """The port above is what self-check.js does (run with node), for the test alphabet
    and for the characters where the two normalizers part (see the parity test below)."""
    source = SELF_CHECK_JS.read_text(encoding="utf-8")
    found = re.search(r"function normalize\(text\) \{.*?\n  \}\n", source, re.S)
    assert found is not None, "normalize() not found in self-check.js"
    samples = [
        "Café « Noël »",
        "  l\u2019équipe !?",
        "E\u0301COLE\u00a0\u00a0Ça.",
        '"4,5 : 1".',
        "\u00ab\u202fOUI\u202f\u00bb",
        *_PARITY_GAPS,
    ]
    script = (
        found.group(0) + "const xs = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "process.stdout.write(JSON.stringify(xs.map(normalize)));\n"
    )
    done = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(samples),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(done.stdout) == [js_normalize(s) for s in samples]


@pytest.mark.parametrize("value", _PARITY_GAPS)
def test_normalize_answer_agrees_with_self_check_js_beyond_latin(value: str) -> None:
    assert normalize_answer(value) == js_normalize(value)


# -- check_answer: choice questions --------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "b", "d"])
@pytest.mark.parametrize("pick", ["a", "b", "c", "d"])
def test_single_choice(key: str, pick: str) -> None:
    question = choice_question("single", {key})
    verdict = check_answer(question, [pick], "fr-CA")
    assert verdict == Verdict(RIGHT if pick == key else WRONG, (pick,))


@pytest.mark.parametrize(
    ("values", "result", "chosen"),
    [
        (["zz", "b"], RIGHT, ("b",)),  # unknown ids are ignored
        (["b", "a"], RIGHT, ("b",)),  # a single choice keeps the first known value
        (["a", "b"], WRONG, ("a",)),
        (["zz"], EMPTY, ()),
        ([], EMPTY, ()),
        (["", "  "], EMPTY, ()),
        ([" b "], RIGHT, ("b",)),
    ],
)
def test_single_choice_form_values(values: list[str], result: str, chosen: tuple[str, ...]) -> None:
    assert check_answer(choice_question("single", {"b"}), values, "en") == Verdict(result, chosen)


@pytest.mark.parametrize(
    ("values", "result"),
    [
        (["a", "b"], RIGHT),
        (["b", "a"], RIGHT),
        (["a", "a", "b"], RIGHT),
        (["a", "zz", "b"], RIGHT),
        (["a"], PARTIAL),
        (["a", "c"], PARTIAL),
        (["a", "b", "c"], PARTIAL),  # every right one and a wrong one is not right
        (["c"], WRONG),
        (["c", "d"], WRONG),
        (["zz", "yy"], EMPTY),
        ([], EMPTY),
        ([""], EMPTY),
    ],
)
def test_multiple_choice(values: list[str], result: str) -> None:
    verdict = check_answer(choice_question("multiple", {"a", "b"}), values, "fr-CA")
    assert verdict.result == result
    known = [v for v in values if v in "abcd" and v]
    assert verdict.chosen == tuple(dict.fromkeys(known))


@st.composite
def multiple_and_pick(draw: st.DrawFn) -> tuple[Question, list[str]]:
    ids = draw(st.lists(st.from_regex(r"[a-z]{1,3}", fullmatch=True), min_size=2, max_size=6))
    ids = list(dict.fromkeys(ids))
    key = draw(st.sets(st.sampled_from(ids), min_size=1))
    question = Question(
        id="q",
        type="multiple",
        prompt=text("?"),
        options=tuple(Option(i, text(i), i in key, text("")) for i in ids),
    )
    picked = draw(st.lists(st.sampled_from([*ids, "unknown-id"]), max_size=10))
    return question, picked


@given(multiple_and_pick())
def test_multiple_choice_is_right_iff_the_key_is_chosen(case: tuple[Question, list[str]]) -> None:
    question, picked = case
    key = {o.id for o in question.options if o.correct}
    chosen = {p for p in picked if p != "unknown-id"}
    verdict = check_answer(question, picked, "fr-CA")
    assert (verdict.result == RIGHT) == (chosen == key)
    assert (verdict.result == EMPTY) == (not chosen)
    assert (verdict.result == PARTIAL) == (bool(chosen & key) and chosen != key)
    assert set(verdict.chosen) == chosen


def test_shipped_multiple_question_of_m01() -> None:
    question = next(q for q in m01().questions if q.type == "multiple")
    key = right_values(question)
    assert check_answer(question, key, "en").result == RIGHT
    assert check_answer(question, key[:-1], "en").result == PARTIAL
    assert check_answer(question, wrong_values(question), "en").result == WRONG


# -- check_answer: true/false and short text -------------------------------------------------


@pytest.mark.parametrize("answer", [True, False])
@pytest.mark.parametrize("value", ["true", "false"])
def test_true_false(answer: bool, value: str) -> None:
    verdict = check_answer(true_false(answer), [value], "fr-CA")
    assert verdict == Verdict(RIGHT if (value == "true") == answer else WRONG, (value,))


@pytest.mark.parametrize("value", ["", " ", "yes", "True", "1", "vrai"])
def test_true_false_without_a_true_or_false_value_is_empty(value: str) -> None:
    assert check_answer(true_false(True), [value], "en").result == EMPTY


_BILINGUAL: dict[str, tuple[str, ...]] = {
    "fr-CA": ("sauvegarde", "copie de sécurité"),
    "en": ("backup", "back-up"),
}


@pytest.mark.parametrize(
    ("lang", "value", "result"),
    [
        ("en", "Backup.", RIGHT),
        ("en", "  BACK-UP !", RIGHT),
        ("en", "sauvegarde", WRONG),  # another language's answers are not accepted
        ("fr-CA", "Copie de securite", RIGHT),
        ("fr-CA", "« sauvegarde »", RIGHT),
        ("fr-CA", "backup", WRONG),
        ("fr-CA", "sauve garde", WRONG),
        ("fr-CA", "...", EMPTY),
        ("fr-CA", "   ", EMPTY),
    ],
)
def test_short_text_per_language(lang: str, value: str, result: str) -> None:
    assert check_answer(short_text(_BILINGUAL), [value], lang).result == result


@pytest.mark.parametrize("lang", ["en", "es", ""])
def test_short_text_falls_back_to_french(lang: str) -> None:
    question = short_text({"fr-CA": ("sauvegarde",), "en": ()})
    assert check_answer(question, ["Sauvegarde"], lang).result == RIGHT
    assert check_answer(question, ["backup"], lang).result == WRONG


def test_short_text_uses_the_first_non_blank_value() -> None:
    question = short_text(_BILINGUAL)
    assert check_answer(question, ["", "backup", "nope"], "en").result == RIGHT
    assert check_answer(question, [], "en").result == EMPTY


@pytest.mark.parametrize("lang", ["fr-CA", "en"])
def test_shipped_short_text_answers_are_accepted_loosely(lang: str) -> None:
    question = next(q for q in m01().questions if q.type == "short_text")
    for accepted in dict(question.accepted)[lang]:
        loose = f"  « {accepted.upper()} » !"
        assert check_answer(question, [loose], lang).result == RIGHT, accepted


# -- Progress ----------------------------------------------------------------------------------


def test_a_right_answer_stays_right_after_a_wrong_retry() -> None:
    progress = Progress().with_answer("q1", Verdict(RIGHT)).with_answer("q1", Verdict(WRONG))
    assert progress.answers["q1"] == AnswerRecord(correct=True, tries=2)


@pytest.mark.parametrize(
    ("results", "correct"),
    [
        ([WRONG, RIGHT], True),
        ([WRONG, WRONG, WRONG], False),
        ([PARTIAL, PARTIAL], False),
        ([PARTIAL, RIGHT, PARTIAL], True),
    ],
)
def test_answers_count_tries(results: list[str], correct: bool) -> None:
    progress = Progress()
    for result in results:
        progress = progress.with_answer("q", Verdict(result))
    assert progress.answers["q"] == AnswerRecord(correct, len(results))


def test_an_empty_answer_is_not_recorded() -> None:
    start = Progress().with_answer("q1", Verdict(WRONG))
    after = start.with_answer("q1", Verdict(EMPTY)).with_answer("q2", Verdict(EMPTY))
    assert after == start
    assert "q2" not in after.answers and after.answers["q1"].tries == 1


def test_with_answer_leaves_the_original_unchanged() -> None:
    start = Progress(("a",), {"q1": AnswerRecord(False, 1)})
    after = start.with_answer("q1", Verdict(RIGHT)).with_answer("q2", Verdict(WRONG))
    assert start.answers == {"q1": AnswerRecord(False, 1)}
    assert after.sections_seen == ("a",)
    assert after.answers == {"q1": AnswerRecord(True, 2), "q2": AnswerRecord(False, 1)}


@given(st.lists(st.sampled_from([RIGHT, PARTIAL, WRONG, EMPTY]), max_size=12))
def test_answer_record_follows_its_history(results: list[str]) -> None:
    progress = Progress()
    for result in results:
        progress = progress.with_answer("q", Verdict(result))
    tries = sum(1 for r in results if r != EMPTY)
    if tries == 0:
        assert "q" not in progress.answers
    else:
        assert progress.answers["q"] == AnswerRecord(RIGHT in results, tries)


def test_with_section_is_idempotent_and_keeps_first_seen_order() -> None:
    once = Progress().with_section("grille")
    assert once.with_section("grille") is once
    seen = once.with_section("pourquoi").with_section("grille").with_section("suite")
    assert seen.sections_seen == ("grille", "pourquoi", "suite")


# -- needed_right and summarize ---------------------------------------------------------------


def module_with(
    counting: int, not_counting: int = 0, pass_ratio: float = 0.7, sections: tuple[str, ...] = ()
) -> Module:
    questions = [replace(choice_question("single", {"a"}), id=f"c{i}") for i in range(counting)] + [
        replace(choice_question("single", {"a"}, counts=False), id=f"n{i}")
        for i in range(not_counting)
    ]
    return replace(
        m01(),
        questions=tuple(questions),
        pass_ratio=pass_ratio,
        sections=tuple(Section(s, 5) for s in sections) if sections else m01().sections,
    )


@pytest.mark.parametrize(
    ("ratio", "counting", "needed"),
    [
        (0.7, 5, 4),  # 3.5 -> 4
        (0.7, 10, 7),  # 0.7 * 10 is 7.000000000000001 in floating point
        (0.7, 3, 3),  # 2.1 -> 3
        (0.6, 5, 3),
        (0.75, 4, 3),
        (1.0, 5, 5),
        (1.0, 1, 1),
        (0.0, 5, 0),
        (0.7, 0, 0),
    ],
)
def test_needed_right(ratio: float, counting: int, needed: int) -> None:
    assert needed_right(module_with(counting, pass_ratio=ratio)) == needed


@given(st.integers(0, 100), st.integers(0, 40), st.integers(0, 5))
def test_needed_right_is_the_ceiling_of_a_percentage(
    percent: int, counting: int, not_counting: int
) -> None:
    module = module_with(counting, not_counting, pass_ratio=percent / 100)
    assert needed_right(module) == math.ceil(Fraction(percent, 100) * counting)


@pytest.mark.parametrize(("ratio", "counting"), [(0.6001, 5), (0.2001, 5), (0.0001, 4)])
def test_needed_right_with_a_ratio_of_four_decimals(ratio: float, counting: int) -> None:
    module = module_with(counting, pass_ratio=ratio)
    needed = needed_right(module)
    assert needed == math.ceil(Fraction(str(ratio)) * counting)
    # What the ratio means: one fewer right answer is below the share.
    assert Fraction(needed - 1, counting) < Fraction(str(ratio))


def test_summarize_m01_as_a_learner_goes() -> None:
    module = m01()
    counting = [q for q in module.questions if q.counts]
    needed = needed_right(module)
    progress = Progress()
    for question in counting[: needed - 1]:
        verdict = check_answer(question, right_values(question, "en"), "en")
        progress = progress.with_answer(question.id, verdict)
    for question in counting[needed - 1 :]:
        verdict = check_answer(question, wrong_values(question), "en")
        progress = progress.with_answer(question.id, verdict)
    before = summarize(module, progress)
    assert (before.counting_right, before.passed) == (needed - 1, False)
    assert before.counting_total == len(counting) and before.needed == needed

    last = counting[-1]
    progress = progress.with_answer(last.id, check_answer(last, right_values(last, "en"), "en"))
    after = summarize(module, progress)
    assert (after.counting_right, after.passed) == (needed, True)


def test_summarize_ignores_questions_that_do_not_count_and_unknown_ids() -> None:
    module = module_with(2, 3, pass_ratio=1.0, sections=("a", "b", "c"))
    progress = Progress(("a", "zz", "c"))
    for qid in ("n0", "n1", "n2", "c0", "gone"):
        progress = progress.with_answer(qid, Verdict(RIGHT))
    summary = summarize(module, progress)
    assert summary.counting_total == 2 and summary.counting_right == 1
    assert summary.needed == 2 and not summary.passed
    assert (summary.sections_total, summary.sections_seen) == (3, 2)
    assert summarize(module, progress.with_answer("c1", Verdict(RIGHT))).passed


def test_a_module_without_counting_questions_is_passed_from_the_start() -> None:
    summary = summarize(module_with(0, 2), Progress())
    assert (summary.needed, summary.counting_total, summary.passed) == (0, 0, True)


# -- resume_section ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "seen", "expected"),
    [
        ("c", ["a", "b", "c"], "c"),  # where the learner was
        ("a", [], "a"),
        (None, [], "a"),
        (None, ["a", "b"], "c"),  # the first unseen
        (None, ["b"], "a"),
        ("gone", ["a"], "b"),  # a section removed in a later version
        (None, ["a", "b", "c"], "a"),  # everything seen: back to the start
    ],
)
def test_resume_section(current: str | None, seen: list[str], expected: str) -> None:
    module = module_with(1, sections=("a", "b", "c"))
    assert resume_section(module, current, seen) == expected


def test_resume_section_of_a_module_without_sections() -> None:
    assert resume_section(replace(m01(), sections=()), None, []) == ""


@pytest.mark.parametrize("seen", range(len(m01().sections) + 1))
def test_resume_m01_goes_to_the_first_unseen_section(seen: int) -> None:
    ids = [s.id for s in m01().sections]
    landing = resume_section(m01(), None, ids[:seen])
    assert landing == (ids[seen] if seen < len(ids) else ids[0])


def test_every_shipped_question_can_be_answered_right_and_wrong() -> None:
    catalog = load_catalog(REPO).catalog
    for module, lang in itertools.product(catalog.modules.values(), ("fr-CA", "en")):
        for question in module.questions:
            right = check_answer(question, right_values(question, lang), lang)
            wrong = check_answer(question, wrong_values(question), lang)
            assert (right.result, wrong.result) == (RIGHT, WRONG), (module.id, question.id)
