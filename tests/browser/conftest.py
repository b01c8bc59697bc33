"""Pytest fixtures for the real-browser tests.

Fixtures:
    chromium_path            "/usr/bin/chromium" (skip if missing; fail when CI=true)
    axe_source               text of axe-core's axe.min.js (skip if missing; fail when CI=true)
    playwright               one Playwright driver for the session
    browser_context          factory: browser_context(third_party_cookies="block"|"allow", **opts)
    run_axe                  run_axe(page_or_frame) -> list[AxeViolation]
    assert_no_axe_violations assert_no_axe_violations(page_or_frame, context_label)

Every test collected under tests/browser gets the ``browser`` marker, so ``-m "not browser"``
deselects them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

import pytest
from playwright.sync_api import BrowserContext, Frame, Page, Playwright, sync_playwright

from .harness import (
    AXE_PATH,
    CHROMIUM_PATH,
    INSTALL_HINT,
    AssertNoAxeViolations,
    AxeViolation,
    BrowserContextFactory,
    RunAxe,
    ThirdPartyCookies,
    ci_requires_browser,
    format_axe_violations,
    launch_context,
)
from .harness import run_axe as _run_axe

_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs a real Chromium (needs scripts/install-browser-deps.sh)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this directory's: mark ours only.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.browser)


def _missing(what: str) -> NoReturn:
    message = f"{what}: {INSTALL_HINT}"
    if ci_requires_browser():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM_PATH, os.X_OK):
        _missing("Chromium not installed")
    return CHROMIUM_PATH


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_PATH.is_file():
        _missing("axe-core not installed")
    return AXE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def playwright(chromium_path: str) -> Iterator[Playwright]:
    # Depends on chromium_path so that a machine without Chromium skips before starting the
    # driver.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(playwright: Playwright, chromium_path: str) -> Iterator[BrowserContextFactory]:
    """Factory that starts Chromium on a fresh profile; every context is closed at teardown.

    ``browser_context(third_party_cookies="block", **options)``: ``options`` go to Playwright's
    ``launch_persistent_context`` (e.g. ``viewport``, ``locale``). The context already has one
    page open (``context.pages[0]``).
    """
    # ExitStack runs every cleanup even if an earlier one raises.
    with ExitStack() as cleanup:

        def launch(
            third_party_cookies: ThirdPartyCookies = "block", **context_options: Any
        ) -> BrowserContext:
            user_data_dir = tempfile.mkdtemp(prefix="chromium-profile-")
            cleanup.callback(shutil.rmtree, user_data_dir, ignore_errors=True)
            context = launch_context(
                playwright,
                Path(user_data_dir),
                third_party_cookies,
                executable_path=chromium_path,
                **context_options,
            )
            cleanup.callback(context.close)
            return context

        yield launch


@pytest.fixture(scope="session")
def run_axe(axe_source: str) -> RunAxe:
    """``run_axe(page_or_frame)``: WCAG 2.1 A/AA violations, {id, impact, help, helpUrl, nodes}."""

    def run(target: Page | Frame) -> list[AxeViolation]:
        return _run_axe(target, axe_source)

    return run


@pytest.fixture(scope="session")
def assert_no_axe_violations(run_axe: RunAxe) -> AssertNoAxeViolations:
    """``assert_no_axe_violations(page_or_frame, context_label)``: fail listing each violation."""

    def check(target: Page | Frame, context_label: str) -> None:
        violations = run_axe(target)
        if violations:
            pytest.fail(format_axe_violations(violations, context_label))

    return check
