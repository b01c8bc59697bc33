"""Module body rendering: lti_tool.content.render."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from lti_tool.content.render import (
    BLOCK_LABELS,
    SPOILER_SUMMARY,
    Heading,
    RenderedBody,
    render_body,
    split_front_matter,
)

MODULES = Path(__file__).parents[2] / "modules"
BODIES = sorted(MODULES.glob("*/fr-CA.md")) + sorted(MODULES.glob("*/en.md"))


def render(
    text: str,
    *,
    lang: str = "fr-CA",
    calls: list[str] | None = None,
) -> RenderedBody:
    """Render with recording callbacks: trusted HTML is easy to spot in the output."""
    log = calls if calls is not None else []

    def self_check(qid: str) -> str:
        log.append(f"self-check:{qid}")
        return f'<form class="self-check" data-q="{qid}"><script>trusted({qid!r})</script></form>'

    def experiment(item: str) -> str:
        log.append(f"experiment:{item}")
        return f'<div class="experiment-card" data-x="{item}"></div>'

    def media_url(path: str) -> str:
        log.append(f"media:{path}")
        return f"/media/m02/1.0.0/{path}?a=1&b=2"

    return render_body(
        text, lang=lang, self_check=self_check, experiment=experiment, media_url=media_url
    )


# --------------------------------------------------------------------------- front matter


def test_front_matter_is_split_with_its_line_count() -> None:
    text = "---\nmodule: m02-collaborer\nlang: fr-CA\n---\n## Pourquoi {#pourquoi}\n\nTexte.\n"
    meta, body, lines = split_front_matter(text)
    assert meta == {"module": "m02-collaborer", "lang": "fr-CA"}
    assert lines == 4
    assert body == "## Pourquoi {#pourquoi}\n\nTexte.\n"
    # Line n of the body is line n + count of the file.
    assert text.split("\n")[lines] == body.split("\n")[0]


def test_front_matter_quotes_crlf_comments_and_colons_in_values() -> None:
    text = '---\r\n# a comment\r\ntitle: "Oui: vraiment"\r\nurl: https://x.org\r\n---\r\nBody'
    meta, body, lines = split_front_matter(text)
    assert meta == {"title": "Oui: vraiment", "url": "https://x.org"}
    assert lines == 5
    assert body == "Body"


def test_text_without_front_matter_is_returned_whole() -> None:
    text = "## Pourquoi {#pourquoi}\n\n---\n\nText after a rule.\n"
    assert split_front_matter(text) == ({}, text, 0)
    assert split_front_matter("") == ({}, "", 0)


@pytest.mark.parametrize(
    "text",
    [
        "---\nmodule: m02\n",  # never closed
        "---\nnot a pair\n---\n",
        "---\nlang: fr-CA\nlang: en\n---\n",
    ],
)
def test_bad_front_matter_raises(text: str) -> None:
    with pytest.raises(ValueError, match="front matter"):
        split_front_matter(text)


# --------------------------------------------------------------------------- headings


def test_section_heading_gets_its_id_and_plain_title() -> None:
    result = render("## Pourquoi *vraiment* s'organiser & co ? {#pourquoi}\n\nTexte.\n")
    assert result.html.startswith(
        '<h2 id="pourquoi">Pourquoi <em>vraiment</em> s\'organiser &amp; co ?</h2>'
    )
    assert result.headings == (Heading("pourquoi", "Pourquoi vraiment s'organiser & co ?", 2),)


def test_subheading_ids_are_prefixed_by_their_section_and_unique() -> None:
    result = render(
        "## Un {#un}\n\n### Classer par activité\n\n### Classer par activité\n\n"
        "#### Détail\n\n## Deux {#deux}\n\n### Classer par activité\n"
    )
    ids = re.findall(r'<h([234]) id="([^"]+)"', result.html)
    assert ids == [
        ("2", "un"),
        ("3", "un--classer-par-activite"),
        ("3", "un--classer-par-activite-2"),
        ("4", "un--detail"),
        ("2", "deux"),
        ("3", "deux--classer-par-activite"),
    ]
    assert [h.id for h in result.headings] == ["un", "deux"]  # only ## sections


def test_heading_without_id_and_h1_get_slugs() -> None:
    result = render("# Titre égaré\n\n## Sans identifiant\n\n## Autre {#autre}\n")
    assert [h.id for h in result.headings] == ["titre-egare", "sans-identifiant", "autre"]
    assert "<h1" not in result.html


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## A {#a}\n\n## B {#a}\n", "used twice"),
        ("## A {#Not A Slug}\n", "not a slug"),
        ("- item\n\n    ## Nested {#n}\n", "top level"),
        ("::: callout\n## Inside {#inside}\n:::\n", "top level"),
    ],
)
def test_bad_section_headings_raise(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(text)


# --------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("lang", ["fr-CA", "en"])
@pytest.mark.parametrize("kind", ["callout", "caution", "example", "discussion", "instructor"])
def test_aside_blocks_have_class_role_and_localized_label(lang: str, kind: str) -> None:
    result = render(f"::: {kind}\nInner **bold** text.\n\n- one\n- two\n:::\n", lang=lang)
    label = BLOCK_LABELS[lang][kind]
    assert result.html == (
        f'<aside class="block block-{kind}" role="note">\n'
        f'<span class="visually-hidden">{label}</span>\n'
        "<p>Inner <strong>bold</strong> text.</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        "</aside>"
    )


def test_block_labels_are_the_agreed_wording() -> None:
    assert BLOCK_LABELS["fr-CA"] == {
        "callout": "À retenir",
        "caution": "Attention",
        "example": "Exemple",
        "discussion": "Discussion",
        "instructor": "Pour la personne animatrice",
        "spoiler": "Réponse",
    }
    assert BLOCK_LABELS["en"] == {
        "callout": "Remember",
        "caution": "Caution",
        "example": "Example",
        "discussion": "Discussion",
        "instructor": "For the facilitator",
        "spoiler": "Answer",
    }


@pytest.mark.parametrize(
    ("lang", "summary"), [("fr-CA", "Afficher la réponse"), ("en", "Show the answer")]
)
def test_spoiler_is_a_details_element(lang: str, summary: str) -> None:
    assert SPOILER_SUMMARY[lang] == summary
    result = render("::: spoiler\nIt was *B*.\n:::\n", lang=lang)
    assert result.html == (
        '<details class="block block-spoiler">\n'
        f"<summary>{summary}</summary>\n"
        "<p>It was <em>B</em>.</p>\n"
        "</details>"
    )


def test_blocks_nest_and_need_no_blank_lines_around_them() -> None:
    result = render("Before\n::: example\nCase.\n::: spoiler\nAnswer.\n:::\n:::\nAfter\n")
    html = result.html
    assert html.index("<p>Before</p>") < html.index('<aside class="block block-example"')
    assert html.index("<details") < html.index("<p>Answer.</p>") < html.index("</details>")
    assert html.index("</details>") < html.index("</aside>") < html.index("<p>After</p>")


def test_block_lines_inside_fenced_code_are_code() -> None:
    result = render("```\n::: nonsense\n<b>x</b>\n```\n")
    assert result.html == "<pre><code>::: nonsense\n&lt;b&gt;x&lt;/b&gt;\n</code></pre>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::: warning\nx\n:::\n", "unknown block"),
        ("::: callout\nnever closed\n", "never closed"),
        ("text\n:::\n", "closes no block"),
        ("::: self-check q1\nnot empty\n:::\n", "must be empty"),
        ("::: self-check\n:::\n", "exactly one id"),
        ("::: experiment a b\n:::\n", "exactly one id"),
        ("::: callout extra\n:::\n", "takes no argument"),
        ("::::\n", "malformed"),
    ],
)
def test_bad_blocks_raise(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(text)


def test_unsupported_language_raises() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        render("Text", lang="fr")


# --------------------------------------------------------------------------- trusted blocks


def test_self_check_and_experiment_html_is_inserted_verbatim_in_order() -> None:
    calls: list[str] = []
    result = render(
        "Intro.\n\n::: self-check q2\n:::\n\n::: callout\n::: self-check q1\n:::\n:::\n\n"
        "::: experiment x02-espace-partage\n:::\n",
        calls=calls,
    )
    assert calls == ["self-check:q2", "self-check:q1", "experiment:x02-espace-partage"]
    q2 = '<form class="self-check" data-q="q2"><script>trusted(\'q2\')</script></form>'
    q1 = '<form class="self-check" data-q="q1"><script>trusted(\'q1\')</script></form>'
    experiment = '<div class="experiment-card" data-x="x02-espace-partage"></div>'
    assert result.html == (
        "<p>Intro.</p>\n"
        f"{q2}\n"
        '<aside class="block block-callout" role="note">\n'
        '<span class="visually-hidden">À retenir</span>\n'
        f"{q1}\n"
        "</aside>\n"
        f"{experiment}"
    )


def test_script_written_in_markdown_is_removed() -> None:
    result = render(
        "<script>alert('block')</script>\n\n"
        "Inline <script>alert('inline')</script> and <b onclick=\"x()\">bold</b>.\n\n"
        "<style>body{display:none}</style>\n\n"
        '<div><a href="javascript:alert(1)">raw link</a> <img src=x onerror=alert(1)></div>\n'
    )
    html = result.html
    for forbidden in ("<script", "alert", "<style", "display:none", "onclick", "onerror", "<b"):
        assert forbidden not in html
    assert "<a" not in html and "<img" not in html and "<div" not in html
    assert "bold" in html and "raw link" in html


def test_script_written_as_code_stays_visible_code() -> None:
    html = render("Use `<script>x()</script>` here.\n\n```html\n<script>y()</script>\n```\n").html
    assert html == (
        "<p>Use <code>&lt;script&gt;x()&lt;/script&gt;</code> here.</p>\n"
        "<pre><code>&lt;script&gt;y()&lt;/script&gt;\n</code></pre>"
    )


# --------------------------------------------------------------------------- Markdown features


def test_tables_get_header_scope_and_no_inline_style() -> None:
    result = render("| Niveau | Accès |\n|:---|---:|\n| Lecteur | Consulter |\n")
    assert result.html == (
        "<table>\n<thead>\n<tr>\n"
        '<th scope="col">Niveau</th>\n<th scope="col">Accès</th>\n'
        "</tr>\n</thead>\n<tbody>\n<tr>\n"
        "<td>Lecteur</td>\n<td>Consulter</td>\n"
        "</tr>\n</tbody>\n</table>"
    )


def test_checklists_render_glyphs_not_inputs() -> None:
    result = render("- [ ] À faire\n- [x] **Fait**\n- [X] Aussi fait\n")
    assert result.html == (
        '<ul class="checklist">\n'
        '<li><span class="checkbox">☐</span> À faire</li>\n'
        '<li><span class="checkbox">☑</span> <strong>Fait</strong></li>\n'
        '<li><span class="checkbox">☑</span> Aussi fait</li>\n'
        "</ul>"
    )
    assert "<input" not in result.html


def test_loose_and_mixed_lists() -> None:
    loose = render("- [ ] Un\n\n- [x] Deux\n").html
    assert '<ul class="checklist">' in loose
    assert '<li>\n<p><span class="checkbox">☐</span> Un</p>\n</li>' in loose
    mixed = render("- [ ] Un\n- Deux\n- [lien] trois\n").html
    assert mixed.startswith("<ul>\n")  # not only tasks: no checklist class
    assert "<li>Deux</li>" in mixed and "<li>[lien] trois</li>" in mixed


def test_no_smart_quotes_and_french_quotes_kept() -> None:
    result = render("\"Quoted\" -- it's ... « déjà » l'équipe\n")
    assert result.html == "<p>\"Quoted\" -- it's ... « déjà » l'équipe</p>"


def test_ordered_list_keeps_its_start_and_fenced_code_is_escaped() -> None:
    html = render("3. trois\n4. quatre\n\n```python\nif a < b:\n```\n").html
    assert '<ol start="3">' in html
    assert "<pre><code>if a &lt; b:\n</code></pre>" in html  # language class dropped


# --------------------------------------------------------------------------- links and images


def test_https_links_kept_with_rel_and_no_target() -> None:
    html = render('Voir [la CAI](https://www.cai.gouv.qc.ca/?a=1&b=2 "titre").\n').html
    assert html == (
        '<p>Voir <a href="https://www.cai.gouv.qc.ca/?a=1&amp;b=2" rel="noopener noreferrer">'
        "la CAI</a>.</p>"
    )
    assert "target" not in html and "title" not in html


def test_mailto_anchor_and_autolinks_kept() -> None:
    html = render(
        "[Écrire](mailto:aide@example.org), [plus haut](#pourquoi), "
        "<https://example.org/x>, <aide@example.org>\n"
    ).html
    assert '<a href="mailto:aide@example.org">Écrire</a>' in html
    assert '<a href="#pourquoi">plus haut</a>' in html
    assert '<a href="https://example.org/x" rel="noopener noreferrer">' in html
    assert '<a href="mailto:aide@example.org">aide@example.org</a>' in html


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java&#115;cript:alert(1)",
        "http://example.org/",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "ftp://example.org/",
        "//example.org/",
        "media/guide.pdf",
        "https://",
        "#",
    ],
)
def test_other_links_become_plain_text(href: str) -> None:
    html = render(f"Avant [le **lien** ici]({href}) après.\n").html
    assert html == "<p>Avant le <strong>lien</strong> ici après.</p>"


def test_images_go_through_media_url_with_alt_and_lazy_loading() -> None:
    calls: list[str] = []
    html = render('![Arborescence « type »](media/arbre.png "Titre")\n', calls=calls).html
    assert calls == ["media:media/arbre.png"]
    assert html == (
        '<p><img alt="Arborescence « type »" loading="lazy" '
        'src="/media/m02/1.0.0/media/arbre.png?a=1&amp;b=2"></p>'
    )


def test_image_paths_may_have_accents() -> None:
    calls: list[str] = []
    html = render("![Affiche](media/affiche-été.png)\n", calls=calls).html
    assert calls == ["media:media/affiche-été.png"]
    assert 'src="/media/m02/1.0.0/media/affiche-été.png?a=1&amp;b=2"' in html


@pytest.mark.parametrize(
    "src",
    [
        "https://tracker.example/pixel.png",
        "http://example.org/x.png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "/etc/passwd",
        "../other-module/media/x.png",
    ],
)
def test_images_outside_the_module_become_their_alt_text(src: str) -> None:
    calls: list[str] = []
    html = render(f"Voir ![le schéma]({src}).\n", calls=calls).html
    assert html == "<p>Voir le schéma.</p>"
    assert calls == []


# --------------------------------------------------------------------------- sections


def test_sections_split_at_each_h2() -> None:
    result = render(
        "## Un {#un}\n\nPremier.\n\n::: self-check q1\n:::\n\n### Sous-titre\n\n"
        "## Deux {#deux}\n\n::: callout\nRetenir.\n:::\n"
    )
    assert [section_id for section_id, _ in result.sections] == ["un", "deux"]
    first, second = (fragment for _, fragment in result.sections)
    assert first.startswith('<h2 id="un">Un</h2>') and "Premier." in first
    assert 'data-q="q1"' in first and '<h3 id="un--sous-titre">' in first
    assert "<h2" not in first[1:] and "Retenir." not in first
    assert second.startswith('<h2 id="deux">Deux</h2>') and second.endswith("</aside>")
    assert "\n".join(fragment for _, fragment in result.sections) == result.html


def test_content_before_the_first_section_is_kept() -> None:
    result = render("Préambule.\n\n## Un {#un}\n\nTexte.\n")
    assert result.sections[0] == ("", "<p>Préambule.</p>")
    assert result.sections[1][0] == "un"
    assert render("").sections == ()


def test_rendering_is_deterministic_and_thread_safe() -> None:
    body = split_front_matter((MODULES / "m02-collaborer" / "fr-CA.md").read_text("utf-8"))[1]
    expected = render(body)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: render(body), range(16)))
    assert all(result == expected for result in results)


# --------------------------------------------------------------------------- real bodies


@pytest.mark.parametrize("path", BODIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_body_renders(path: Path) -> None:
    meta, body, lines = split_front_matter(path.read_text("utf-8"))
    assert meta["module"] == path.parent.name and meta["lang"] == path.stem and lines > 0
    calls: list[str] = []
    result = render(body, lang=path.stem, calls=calls)

    h2_lines = [line for line in body.splitlines() if line.startswith("## ")]
    assert len(result.headings) == len(h2_lines) == result.html.count("<h2")
    assert [section_id for section_id, _ in result.sections] == [h.id for h in result.headings]
    module = yaml.safe_load((path.parent / "module.yaml").read_text("utf-8"))
    assert [h.id for h in result.headings] == [section["id"] for section in module["sections"]]
    assert all(h.title and "{#" not in h.title for h in result.headings)

    self_checks = re.findall(r"^::: self-check (\S+)$", body, flags=re.MULTILINE)
    assert [c for c in calls if c.startswith("self-check:")] == [
        f"self-check:{qid}" for qid in self_checks
    ]
    assert result.html.count('<form class="self-check"') == len(self_checks)
    assert ":::" not in result.html
    assert result.html.count("<aside") == result.html.count("</aside>")
    assert "\n".join(fragment for _, fragment in result.sections) == result.html
