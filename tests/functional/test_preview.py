"""The content preview (``lti-tool content preview``): no LMS, no database, the working tree.

Built on the repository's content and on temporary copies that a test edits or breaks.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from lti_tool.cli import main as cli_main
from lti_tool.content.catalog import load_catalog
from lti_tool.content.model import BadgeClass, Catalog
from lti_tool.web.preview import SVG_CSP, create_preview_app

ROOT = Path(__file__).resolve().parents[2]
CATALOG: Catalog = load_catalog(ROOT).catalog
MODULES = sorted(CATALOG.modules)
EXPERIMENTS = sorted(CATALOG.experiments)
BADGES = sorted(CATALOG.badges)
PAGES = (
    [("modules", i) for i in MODULES]
    + [("experiments", i) for i in EXPERIMENTS]
    + [("badges", i) for i in BADGES]
)
LANGS = ("fr-CA", "en")


def esc(text: str) -> str:
    """``text`` as the templates escape it."""
    return str(escape(text))


def title_of(item_id: str, lang: str) -> str:
    item = CATALOG.item(item_id)
    assert item is not None
    return (item.name if isinstance(item, BadgeClass) else item.title).get(lang)


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_parts: list[str] = []
        self.feed(text)
        self.text = " ".join(" ".join(self.text_parts).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    return create_preview_app(ROOT).test_client()


def copy_content(target: Path, *, lock: bool = False) -> Path:
    for name in ("modules", "experiments", "badges"):
        shutil.copytree(ROOT / name, target / name)
    if lock:
        shutil.copy(ROOT / "content.lock", target / "content.lock")
    return target


@pytest.fixture
def copy(tmp_path: Path) -> Iterator[tuple[Path, FlaskClient]]:
    root = copy_content(tmp_path / "content")
    yield root, create_preview_app(root).test_client()


def get(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def fetch(client: FlaskClient, url: str) -> tuple[int, str, bytes, dict[str, str]]:
    """Status, type, body and headers of a file response, closed (no open file left)."""
    with client.get(url, follow_redirects=True) as response:
        return response.status_code, response.mimetype, response.data, dict(response.headers)


def bump_mtime(path: Path) -> None:
    """Make sure the edit is seen even on a file system with coarse timestamps."""
    later = time.time() + 2
    os.utime(path, (later, later))


# -- the app ---------------------------------------------------------------------------


def test_preview_app_needs_no_database_nor_settings() -> None:
    app = create_preview_app(ROOT)
    assert isinstance(app, Flask)
    assert "dataide_settings" not in app.extensions
    assert "dataide_store" not in app.extensions
    assert "sqlalchemy" not in " ".join(app.extensions)


def test_index_lists_the_17_items_grouped_by_kind(client: FlaskClient) -> None:
    text = get(client, "/")
    page = Page(text)
    rows = [a for t, a in page.tags if t == "tr" and a.get("class", "").startswith("item-")]
    assert len(rows) == 17 == len(PAGES)
    for kind, item_id in PAGES:
        assert page.find("a", href=f"/{kind}/{item_id}?lang=fr-CA"), item_id
        assert f"<code>{item_id}</code>" in text
        assert esc(title_of(item_id, "fr-CA")) in text
    # Grouped: every module before every experiment before every badge.
    order = [text.index(f"/{kind}/{item_id}?") for kind, item_id in PAGES]
    assert order == sorted(order)
    for heading in ("Modules", "Expérimentations", "Badges"):
        assert f">{heading}</h2>" in text
    assert "60 min + 10 min d'autoévaluation" in page.text
    assert "3 semaines" in page.text and "12 points, réussite à 9" in page.text
    assert "17 éléments" in page.text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("kind", "item_id"), PAGES)
def test_every_item_page_in_both_languages(
    client: FlaskClient, kind: str, item_id: str, lang: str
) -> None:
    text = get(client, f"/{kind}/{item_id}?lang={lang}")
    page = Page(text)
    assert page.find("html", lang=lang)
    title = title_of(item_id, lang)
    assert f'<h1 lang="{lang}">{esc(title)}</h1>' in text
    assert f"<title>{esc(title)} · " in text
    other = "en" if lang == "fr-CA" else "fr-CA"
    switch = page.find("a", hreflang=other)
    assert switch and switch[0]["href"] == f"/{kind}/{item_id}?lang={other}"
    assert switch[0]["lang"] == other
    assert "notice-error" not in text  # the shipped content has no diagnostics


def test_default_language_is_french_and_unknown_values_fall_back(client: FlaskClient) -> None:
    for url in ("/", "/?lang=de", "/modules/m02-collaborer?lang=xx"):
        response = client.get(url, headers={"Accept-Language": "en"})
        assert Page(response.get_data(as_text=True)).find("html", lang="fr-CA"), url
    assert 'lang="en"' in get(client, "/?lang=en")[:200]


def test_module_page_shows_every_part(client: FlaskClient) -> None:
    module = CATALOG.modules["m02-collaborer"]
    text = get(client, "/modules/m02-collaborer?lang=en")
    page = Page(text)
    assert module.summary.get("en") in page.text
    for objective in module.objectives:
        assert objective.text.get("en") in page.text
    for point in module.keypoints:
        assert point.get("en") in page.text
    assert "60 min of learning and 10 min of self-check" in page.text
    # The section list links every ## heading, in order, with its minutes.
    start = text.index('<nav class="toc"')
    nav = text[start : text.index("</nav>", start)]
    links = re.findall(r'href="#([a-z0-9-]+)"', nav)
    assert links == [s.id for s in module.sections]
    for section in module.sections:
        assert page.find("h2", id=section.id)
        assert f"({section.minutes} min)" in nav
    # The body's experiment block became the linked experiment's card, linked to its page.
    assert 'class="experiment-card"' in text
    assert page.find("a", href="/experiments/x02-espace-partage?lang=en")
    # Key points come after the body.
    assert text.index('id="page-keypoints"') > text.index(f'id="{module.sections[-1].id}"')


def test_self_check_questions_are_accessible_forms(client: FlaskClient) -> None:
    expected_input = {"single": "radio", "multiple": "checkbox", "true_false": "radio"}
    for module_id in MODULES:
        module = CATALOG.modules[module_id]
        for lang in LANGS:
            text = get(client, f"/modules/{module_id}?lang={lang}")
            page = Page(text)
            labels = {a["for"] for a in page.find("label") if "for" in a}
            for question in module.questions:
                base = f"sc-{module_id}-{question.id}"
                assert len(page.find("form", id=base)) == 1, (module_id, question.id)
                form = text[text.index(f'<form class="self-check" id="{base}"') :]
                form = form[: form.index("</form>")]
                assert "<fieldset>" in form and "<legend>" in form
                assert esc(question.prompt.get(lang)) in form
                inputs = [a for a in Page(form).find("input") if a.get("type") != "hidden"]
                assert inputs
                for field in inputs:
                    assert field["id"] in labels, (module_id, field["id"])
                    assert field["name"] == base
                if question.type == "short_text":
                    assert [f["type"] for f in inputs] == ["text"]
                    assert 'data-when="correct"' in form and 'data-when="incorrect"' in form
                else:
                    assert {f["type"] for f in inputs} == {expected_input[question.type]}
                    count = len(question.options) if question.options else 2
                    assert len(inputs) == count
                    # Every option carries its feedback, revealed by self-check.js.
                    for field in inputs:
                        assert f'data-for="{field["id"]}" hidden' in form
                    for option in question.options:
                        assert esc(option.feedback.get(lang)) in form
                assert '<button type="submit">' in form
                assert 'role="status"' in form


def test_check_button_and_feedback_labels_are_translated(client: FlaskClient) -> None:
    fr = get(client, "/modules/m01-maturite?lang=fr-CA")
    en = get(client, "/modules/m01-maturite?lang=en")
    assert '<button type="submit">Vérifier</button>' in fr
    assert '<button type="submit">Check</button>' in en
    assert "Vrai" in fr and "Faux" in fr and ">True<" in en and ">False<" in en
    assert "Autoévaluation" in fr and "Self-check" in en


def test_experiment_page_shows_instructions_deliverables_and_rubric(client: FlaskClient) -> None:
    experiment = CATALOG.experiments["x02-espace-partage"]
    text = get(client, "/experiments/x02-espace-partage")
    page = Page(text)
    assert "3 semaines, environ 6 heures de travail" in page.text
    assert "en équipe" in page.text
    # Instructions are Markdown, rendered (### headings, lists, bold).
    assert page.find("h3", id="etapes")
    assert "<strong>Choisir une activité réelle.</strong>" in text
    for deliverable in experiment.deliverables:
        assert esc(deliverable.prompt.get("fr-CA")) in text
    assert "De 200 à 700 mots." in page.text
    assert "Types de fichiers acceptés : png, jpg, pdf." in page.text
    assert "Au plus 10 Mo." in page.text
    # The rubric: a table with column and row-group headers, every level, the threshold.
    assert [a["scope"] for a in page.find("th") if a.get("scope") == "col"] == ["col"] * 3
    assert len(page.find("th", scope="rowgroup")) == len(experiment.rubric.criteria)
    for criterion in experiment.rubric.criteria:
        assert esc(criterion.title.get("fr-CA")) in text
        for level in criterion.levels:
            assert esc(level.text.get("fr-CA")) in text
    assert "Seuil de réussite : 9 points" in page.text
    assert "<caption" in text


def test_badge_page_shows_image_criteria_and_rules(client: FlaskClient) -> None:
    badge = CATALOG.badges["b03-influenceur"]
    for lang in LANGS:
        text = get(client, f"/badges/b03-influenceur?lang={lang}")
        page = Page(text)
        images = page.find("img", class_="badge-image")
        assert images and images[0]["alt"] == badge.image_alt.get(lang)
        assert fetch(client, images[0]["src"])[0] == 200
        assert esc(badge.description.get(lang)) in text
        assert "<strong>" in text[text.index('id="page-criteria"') :]  # narrative rendered
        # The rule tree, in words and with links to the items it names.
        rules = Page(text[text.index('id="page-rules"') :]).text
        assert title_of("x06-atelier-pairs", lang) in rules
        assert title_of("b02-organisme-en-action", lang) in rules
        for module_id in MODULES:
            assert f"{module_id}@1" in rules
    fr_rules = Page(get(client, "/badges/b03-influenceur")).text
    assert "Toutes les conditions suivantes" in fr_rules
    assert "Au moins une des conditions suivantes" in fr_rules
    assert "Réussir au moins 4 de ces 5 expérimentations" in fr_rules
    assert "chacune avec au moins 70 % des points" in fr_rules
    assert "avec au moins 10 points" in fr_rules
    assert "qui rédige une note comme preuve" in fr_rules
    en_rules = Page(get(client, "/badges/b01-virage-amorce?lang=en")).text
    assert "Submit the experiment" in en_rules or "Complete every one of these modules" in en_rules


def test_unknown_items_are_404(client: FlaskClient) -> None:
    for url in ("/modules/nope", "/experiments/m01-maturite", "/badges/x01-autodiagnostic"):
        assert client.get(url).status_code == 404


# -- security --------------------------------------------------------------------------


def test_pages_have_the_tools_csp_and_no_inline_script(client: FlaskClient) -> None:
    for url in ("/", "/modules/m03-cyber", "/experiments/x03-cyber", "/badges/b01-virage-amorce"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce and "script-src 'self' 'nonce-" in csp and "object-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        scripts = Page(response.get_data(as_text=True)).find("script")
        assert scripts
        for script in scripts:
            assert script.get("src", "").startswith("/static/js/"), script
            assert script["nonce"] == nonce.group(1)
        assert "style=" not in response.get_data(as_text=True)


def test_svg_is_served_with_a_restrictive_csp(client: FlaskClient) -> None:
    for badge in CATALOG.badges.values():
        status, mimetype, data, headers = fetch(
            client, f"/badges/{badge.id}/image/{badge.image_file}"
        )
        assert status == 200
        assert mimetype == "image/svg+xml"
        assert headers["Content-Security-Policy"] == SVG_CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert data.lstrip().startswith(b"<svg")


def test_media_are_served_only_from_inside_the_content(
    copy: tuple[Path, FlaskClient], tmp_path: Path
) -> None:
    root, client = copy
    media = root / "modules" / "m01-maturite" / "media"
    media.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    (media / "schema.png").write_bytes(png)
    (media / "notes.txt").write_text("not an image", encoding="utf-8")
    (media / ".hidden.png").write_bytes(png)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png)
    (media / "link.png").symlink_to(secret)
    (media / "sub").mkdir()
    (media / "sub" / "deep.jpg").write_bytes(b"\xff\xd8\xff")

    assert fetch(client, "/modules/m01-maturite/media/schema.png")[:3] == (200, "image/png", png)
    assert fetch(client, "/modules/m01-maturite/media/sub/deep.jpg")[1] == "image/jpeg"
    for url in (
        "/modules/m01-maturite/media/../module.yaml",
        "/modules/m01-maturite/media/%2e%2e/module.yaml",
        "/modules/m01-maturite/media/..%2fmodule.yaml",
        "/modules/m01-maturite/media/..%2f..%2f..%2fsecret.png",
        "/modules/m01-maturite/media/%2fetc%2fpasswd",
        "/modules/m01-maturite/media//etc/passwd",
        "/modules/m01-maturite/media/notes.txt",
        "/modules/m01-maturite/media/.hidden.png",
        "/modules/m01-maturite/media/link.png",
        "/modules/m01-maturite/media/missing.png",
        "/modules/..%2f..%2f/media/secret.png",
        "/modules/M01/media/schema.png",
        "/badges/b01-virage-amorce/image/badge.yaml",
        "/badges/b01-virage-amorce/image/../../../modules/m01-maturite/media/schema.png",
        "/badges/b01-virage-amorce/image/..%2f..%2fissuer.yaml",
    ):
        assert fetch(client, url)[0] == 404, url


def test_images_in_a_body_point_to_the_media_route(copy: tuple[Path, FlaskClient]) -> None:
    root, client = copy
    module = root / "modules" / "m02-collaborer"
    (module / "media").mkdir()
    (module / "media" / "arbre.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for lang, alt in (("fr-CA", "Arborescence des dossiers"), ("en", "Folder tree")):
        body = module / f"{lang}.md"
        text = body.read_text(encoding="utf-8")
        text = text.replace("\n## ", f"\n![{alt}](media/arbre.png)\n\n## ", 1)
        body.write_text(text, encoding="utf-8")
    text = get(client, "/modules/m02-collaborer?lang=en")
    image = Page(text).find("img", alt="Folder tree")
    assert image and image[0]["src"] == "/modules/m02-collaborer/media/arbre.png"
    assert fetch(client, image[0]["src"])[0] == 200


# -- reload on change, diagnostics -----------------------------------------------------


def test_fingerprint_changes_after_an_edit_and_the_page_shows_it(
    copy: tuple[Path, FlaskClient],
) -> None:
    root, client = copy
    before = get(client, "/_fingerprint")
    assert re.fullmatch(r"[0-9a-f]{16}", before)
    assert get(client, "/_fingerprint") == before
    assert client.get("/_fingerprint").headers["Cache-Control"] == "no-store"
    page = get(client, "/modules/m02-collaborer")
    assert f'data-fingerprint="{before}"' in page
    assert 'data-url="/_fingerprint"' in page

    body = root / "modules" / "m02-collaborer" / "fr-CA.md"
    body.write_text(
        body.read_text(encoding="utf-8") + "\nUn paragraphe ajouté pendant l'aperçu.\n",
        encoding="utf-8",
    )
    bump_mtime(body)
    after = get(client, "/_fingerprint")
    assert after != before
    page = get(client, "/modules/m02-collaborer")
    assert "Un paragraphe ajouté pendant l'aperçu." in Page(page).text
    assert f'data-fingerprint="{after}"' in page

    # A YAML edit too: the module becomes a draft, flagged on the index and its page.
    yaml_file = root / "modules" / "m03-cyber" / "module.yaml"
    yaml_file.write_text(
        yaml_file.read_text(encoding="utf-8").replace("status: stable", "status: draft", 1),
        encoding="utf-8",
    )
    bump_mtime(yaml_file)
    # As in the browser: the reload poll notices the change, then the page is reloaded.
    assert get(client, "/_fingerprint") != after
    index = get(client, "/")
    assert index.count("Brouillon : aperçu seulement") == 1
    assert 'class="item-draft"' in index
    assert "Draft: preview only" in get(client, "/modules/m03-cyber?lang=en")


def test_a_broken_copy_shows_its_diagnostics_and_what_still_loads(
    copy: tuple[Path, FlaskClient],
) -> None:
    root, client = copy
    # A YAML syntax error: the experiment cannot be loaded at all.
    broken = root / "experiments" / "x05-feuille-route" / "experiment.yaml"
    broken.write_text("schema: dataide/experiment@1\ntitle: [oops\n", encoding="utf-8")
    # An unknown block in a body: the module loads, its body cannot be rendered.
    body = root / "modules" / "m04-loi25" / "en.md"
    body.write_text(
        body.read_text(encoding="utf-8") + "\n::: sidebar\nText.\n:::\n", encoding="utf-8"
    )
    # A warning: sections no longer add up to the duration.
    module_yaml = root / "modules" / "m05-donnees" / "module.yaml"
    text = module_yaml.read_text(encoding="utf-8")
    module_yaml.write_text(
        re.sub(r"learning_minutes: (\d+)", lambda m: f"learning_minutes: {int(m[1]) + 5}", text),
        encoding="utf-8",
    )
    result = load_catalog(root)
    codes = {d.code for d in result.diagnostics}
    assert {"C001", "C020", "C041"} <= codes

    index = get(client, "/")
    page = Page(index)
    assert page.find("section", class_="diagnostics notice notice-error")
    for d in result.diagnostics:
        assert f"{d.path}:{d.line}:{d.col}" in index
        assert f'<code class="diagnostic-code">{d.code}</code>' in index
        assert esc(d.message) in index
    assert "erreur(s)" in page.text
    # Diagnostics come right after the page title, before the lists.
    assert index.index("</h1>") < index.index("diagnostics") < index.index('id="kind-modules"')
    # Everything else still loads; the broken experiment is missing.
    rows = [a for t, a in page.tags if t == "tr" and a.get("class", "").startswith("item-")]
    assert len(rows) == 16
    assert "/experiments/x05-feuille-route?" not in index
    # Every page shows the list; the module with the bad block shows the rest of itself.
    en = get(client, "/modules/m04-loi25?lang=en")
    assert "diagnostic-code" in en
    assert "The body could not be shown" in en
    assert "sidebar" in en
    assert "page-keypoints" in en and "page-objectives" in en
    assert get(client, "/modules/m04-loi25?lang=fr-CA").count('class="self-check"') >= 4
    assert "diagnostic-code" in get(client, "/badges/b01-virage-amorce")
    # A module whose linked experiment is gone gets a notice instead of a card.
    m06 = get(client, "/modules/m06-presence")
    assert "L'expérimentation x05-feuille-route n'existe pas." in Page(m06).text


def test_warnings_alone_are_shown_as_warnings(copy: tuple[Path, FlaskClient]) -> None:
    root, client = copy
    module_yaml = root / "modules" / "m05-donnees" / "module.yaml"
    text = module_yaml.read_text(encoding="utf-8")
    module_yaml.write_text(
        re.sub(r"learning_minutes: (\d+)", lambda m: f"learning_minutes: {int(m[1]) + 5}", text),
        encoding="utf-8",
    )
    index = get(client, "/?lang=en")
    assert "notice-warning" in index and "notice-error" not in index
    assert "0 error(s) and 1 warning(s)" in index
    assert "C041" in index


# -- the command -----------------------------------------------------------------------


def test_content_preview_command_serves_on_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run_simple(host: str, port: int, app: Any, **options: Any) -> None:
        calls.append({"host": host, "port": port, "app": app, **options})

    monkeypatch.setattr("werkzeug.serving.run_simple", fake_run_simple)
    # No settings, no database: the command must not build the full application.
    for name in ("DATABASE_URL", "SECRET_KEY", "KEY_ENCRYPTION_KEY", "BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    root = copy_content(tmp_path / "content")
    result = CliRunner().invoke(cli_main, ["content", "preview", "--path", str(root)])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 5174
    assert calls[0]["use_reloader"] is False and calls[0]["threaded"] is True
    assert "http://127.0.0.1:5174/" in result.output
    assert "17 items" in result.output
    client = calls[0]["app"].test_client()
    assert client.get("/").status_code == 200

    result = CliRunner().invoke(
        cli_main,
        ["content", "preview", "--path", str(root), "--port", "6001", "--host", "0.0.0.0"],  # noqa: S104
    )
    assert result.exit_code == 0, result.output
    assert calls[-1]["host"] == "0.0.0.0"  # noqa: S104
    assert calls[-1]["port"] == 6001
    assert "warning" in result.output
