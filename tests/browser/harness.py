"""Real-browser test harness: Debian's Chromium driven by Playwright, axe-core, tiny WSGI servers.

The fixtures in ``conftest.py`` are thin wrappers around the functions here, so helpers that do
not need pytest (``serve_wsgi``, ``format_axe_violations``) can be imported by tests directly.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from playwright.sync_api import BrowserContext, Frame, Page, Playwright
from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# Debian's package; Playwright must never download a browser of its own (only PyPI, npm and
# Debian's apt are reachable from developer machines and CI).
CHROMIUM_PATH = "/usr/bin/chromium"
AXE_PATH = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_HINT = "run scripts/install-browser-deps.sh"

ThirdPartyCookies = Literal["block", "allow"]

# Values of the profile preference ``profile.cookie_controls_mode``.
_COOKIE_CONTROLS_MODE: dict[ThirdPartyCookies, int] = {"block": 1, "allow": 0}

# Copied from Playwright's chromiumSwitches (playwright 1.65.2, in
# site-packages/playwright/driver/package/lib/coreBundle.js). Playwright passes them as a single
# ``--disable-features=`` argument; ``ignore_default_args`` only drops exact matches, so this
# list must be byte-identical to Playwright's to remove that argument. If it is not, Chromium
# gets two ``--disable-features`` and keeps only the last (ours), silently losing whatever a
# newer Playwright disables: ``launch_context`` checks the browser's real command line and
# fails instead.
PLAYWRIGHT_DISABLED_FEATURES: tuple[str, ...] = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
# Real Chrome partitions third-party storage: with it disabled, localStorage in an iframe whose
# third-party cookies are blocked throws SecurityError, which no user would ever see.
_KEPT_ENABLED = "ThirdPartyStoragePartitioning"
DISABLED_FEATURES: tuple[str, ...] = tuple(
    feature for feature in PLAYWRIGHT_DISABLED_FEATURES if feature != _KEPT_ENABLED
)

CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    # Root cannot use Chromium's sandbox; CI runs as root.
    "--no-sandbox",
    "--disable-gpu",
    # QUIC would try UDP to the outside world, which this network does not have.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
)

AXE_TAGS: tuple[str, ...] = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


class AxeViolation(TypedDict):
    id: str
    impact: str | None
    help: str
    helpUrl: str
    # One CSS selector per offending node; parts crossing iframes/shadow roots joined by " >> ".
    nodes: list[str]


# Types of the callables that the conftest fixtures of the same names return.
BrowserContextFactory = Callable[..., BrowserContext]
RunAxe = Callable[[Page | Frame], list[AxeViolation]]
AssertNoAxeViolations = Callable[[Page | Frame, str], None]


def write_profile_preferences(user_data_dir: Path, third_party_cookies: ThirdPartyCookies) -> None:
    """Write ``Default/Preferences`` so the profile starts with the wanted cookie setting."""
    if third_party_cookies not in _COOKIE_CONTROLS_MODE:
        raise ValueError(f"third_party_cookies must be 'block' or 'allow': {third_party_cookies!r}")
    preferences = {"profile": {"cookie_controls_mode": _COOKIE_CONTROLS_MODE[third_party_cookies]}}
    profile_dir = user_data_dir / "Default"
    profile_dir.mkdir(parents=True, exist_ok=True)
    (profile_dir / "Preferences").write_text(json.dumps(preferences), encoding="utf-8")


def launch_context(
    playwright: Playwright,
    user_data_dir: Path,
    third_party_cookies: ThirdPartyCookies = "block",
    *,
    executable_path: str = CHROMIUM_PATH,
    **context_options: Any,
) -> BrowserContext:
    """Start Chromium on a fresh profile in ``user_data_dir`` and return its context.

    ``context_options`` go to ``launch_persistent_context`` (viewport, locale, ...).
    """
    write_profile_preferences(user_data_dir, third_party_cookies)
    default_disable_arg = "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES)
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=executable_path,
        headless=True,
        args=list(CHROMIUM_ARGS),
        ignore_default_args=[default_disable_arg],
        **context_options,
    )
    try:
        check_disabled_features(browser_command_line(user_data_dir))
    except BaseException:
        context.close()
        raise
    return context


def browser_command_line(user_data_dir: Path) -> list[str]:
    """Return the argv of the Chromium browser process that uses ``user_data_dir``.

    Read from /proc because neither Playwright nor CDP exposes the final command line (Debian's
    /usr/bin/chromium wrapper adds its own flags too).
    """
    wanted = f"--user-data-dir={user_data_dir}"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended while we were looking
            continue
        argv = [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]
        # Child processes (renderer, GPU, ...) carry --type=; the browser process does not.
        if wanted in argv and not any(arg.startswith("--type=") for arg in argv):
            return argv
    raise RuntimeError(f"no Chromium browser process found with {wanted}")


def check_disabled_features(argv: list[str]) -> None:
    """Fail when Chromium got Playwright's default feature list or lost partitioned storage."""
    disable_args = [arg for arg in argv if arg.startswith("--disable-features=")]
    disabled = {
        feature
        for arg in disable_args
        for feature in arg.removeprefix("--disable-features=").split(",")
    }
    if len(disable_args) != 1 or _KEPT_ENABLED in disabled:
        raise RuntimeError(
            f"Chromium was started with {disable_args}: expected only the harness's own "
            f"--disable-features without {_KEPT_ENABLED}. Playwright's default feature list "
            "probably changed: update PLAYWRIGHT_DISABLED_FEATURES in tests/browser/harness.py "
            "from chromiumSwitches in playwright's driver/package/lib/coreBundle.js."
        )


# Runs inside the page. axe.run's ``iframes: false``: axe would otherwise wait for an answer
# from every cross-origin iframe, which has no axe injected; tests check each frame on its own.
_RUN_AXE_JS = """
async (tags) => {
    const results = await axe.run(document, {
        runOnly: {type: "tag", values: tags},
        resultTypes: ["violations"],
        iframes: false,
    });
    return results.violations.map((violation) => ({
        id: violation.id,
        impact: violation.impact,
        help: violation.help,
        helpUrl: violation.helpUrl,
        nodes: violation.nodes.map((node) =>
            node.target.map((part) => Array.isArray(part) ? part.join(" ") : part).join(" >> ")
        ),
    }));
}
"""


def run_axe(target: Page | Frame, axe_source: str) -> list[AxeViolation]:
    """Inject axe-core into ``target`` (page or frame); return its WCAG 2.1 A/AA violations."""
    if not target.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through CDP rather than an inline <script>, so the page's
        # Content-Security-Policy cannot block the injection.
        target.evaluate(axe_source)
    violations: list[AxeViolation] = target.evaluate(_RUN_AXE_JS, list(AXE_TAGS))
    return violations


def format_axe_violations(violations: list[AxeViolation], context_label: str) -> str:
    """Human-readable report of ``violations`` found in ``context_label``."""
    lines = [f"{len(violations)} axe violation(s) in {context_label}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact'] or 'unknown impact'}): "
            f"{violation['help']} <{violation['helpUrl']}>"
        )
        lines.extend(f"    at {node}" for node in violation["nodes"])
    return "\n".join(lines)


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def serve_wsgi(app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the WSGI ``app`` on ``host`` in a background thread; yield its base URL.

    ``port=0`` picks a free port. The host is kept in the URL as given, so ``localhost`` and
    ``127.0.0.1`` are two different sites for the browser even though both are loopback.
    """
    server = make_server(host, port, app, threaded=True, request_handler=_QuietRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"serve_wsgi {host}:{server.port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def ci_requires_browser() -> bool:
    """CI must run the browser tests: a missing dependency there fails instead of skipping."""
    return os.environ.get("CI") == "true"
