"""The content preview in Debian's Chromium: no axe-core violation, the self-check works, the
page reloads on its own when a file changes, and pages fit a phone's width."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from lti_tool.web.preview import create_preview_app

from .harness import AssertNoAxeViolations, BrowserContextFactory, serve_wsgi

ROOT = Path(__file__).resolve().parents[2]
MODULE = "/modules/m02-collaborer"
PAGES = ("/", MODULE, "/experiments/x02-espace-partage", "/badges/b03-influenceur")
ALL_PAGES = (
    "/",
    *(f"/modules/{p.name}" for p in sorted((ROOT / "modules").iterdir()) if p.is_dir()),
    *(f"/experiments/{p.name}" for p in sorted((ROOT / "experiments").iterdir()) if p.is_dir()),
    *(f"/badges/{p.name}" for p in sorted((ROOT / "badges").iterdir()) if p.is_dir()),
)
WAIT_MS = 10_000


def open_page(page: Page, url: str, lang: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == lang


def test_preview_pages_have_no_axe_violations(
    browser_context: BrowserContextFactory, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    app = create_preview_app(ROOT)
    with serve_wsgi(app) as base:
        page = browser_context().pages[0]
        failed: list[str] = []  # every request the pages make succeeds (favicon aside)
        page.on(
            "response",
            lambda r: (
                failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for lang, check, wrong, right in (
            ("fr-CA", "Vérifier", "Pas tout à fait", "Bonne réponse."),
            ("en", "Check", "Not quite", "Right answer."),
        ):
            for path in PAGES:
                open_page(page, f"{base}{path}?lang={lang}", lang)
                assert_no_axe_violations(page, f"{path} ({lang})")

            # A wrong answer to q1 (single choice), then "Check": its feedback and a status.
            open_page(page, f"{base}{MODULE}?lang={lang}", lang)
            form = page.locator("form#sc-m02-collaborer-q1")
            wrong_option = form.locator('input[data-correct="false"]').first
            wrong_option.check()
            form.get_by_role("button", name=check).click()
            feedback = form.locator(f'.feedback[data-for="{wrong_option.get_attribute("id")}"]')
            expect(feedback).to_be_visible()
            expect(form.get_by_role("status")).to_contain_text(wrong, timeout=WAIT_MS)
            expect(form.locator('.feedback[data-for$="-a"]')).to_be_hidden()
            assert_no_axe_violations(page, f"{MODULE} after a wrong answer ({lang})")

            # A right short answer, typed with other case and no accents.
            short = page.locator("form#sc-m02-collaborer-q3")
            short.get_by_role("textbox").fill(
                "MOINDRE PRIVILEGE" if lang == "fr-CA" else "Least Privilege"
            )
            short.get_by_role("button", name=check).click()
            expect(short.get_by_role("status")).to_have_text(right, timeout=WAIT_MS)
            expect(short.locator('.feedback[data-when="correct"]')).to_be_visible()
            assert_no_axe_violations(page, f"{MODULE} after a right answer ({lang})")
        assert failed == []
        assert errors == []


def test_preview_reloads_when_a_file_changes(
    browser_context: BrowserContextFactory, tmp_path: Path
) -> None:
    root = tmp_path / "content"
    for name in ("modules", "experiments", "badges"):
        shutil.copytree(ROOT / name, root / name)
    with serve_wsgi(create_preview_app(root)) as base:
        page = browser_context().pages[0]
        open_page(page, f"{base}{MODULE}", "fr-CA")
        body = root / "modules" / "m02-collaborer" / "fr-CA.md"
        body.write_text(
            body.read_text(encoding="utf-8") + "\nTexte ajouté pendant que la page est ouverte.\n",
            encoding="utf-8",
        )
        expect(page.locator("main")).to_contain_text(
            "Texte ajouté pendant que la page est ouverte.", timeout=WAIT_MS
        )


def test_preview_fits_a_phone(
    browser_context: BrowserContextFactory, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    with serve_wsgi(create_preview_app(ROOT)) as base:
        page = browser_context(viewport={"width": 360, "height": 740}).pages[0]
        for path in ALL_PAGES:
            open_page(page, f"{base}{path}", "fr-CA")
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
            if path in PAGES:
                assert_no_axe_violations(page, f"{path} (phone)")
