"""Content benchmark: check, publish and render a library of 1,000 items.

``make bench-content`` (or ``.venv/bin/python bench/content.py --help``). What is measured
and how to read the output: ``bench/README.md``.

In a temporary folder, the run:

* generates a library by cloning the shipped modules, experiments and badges under new ids
  (``m01-maturite`` -> ``m01-maturite-k0``, ``-k1``...), references rewritten so that the
  library checks without errors, and commits it to a fresh Git repository;
* times the check (``load_catalog``, uncached) against a plain pass over the same files
  (``yaml.load`` with libyaml's ``CSafeLoader`` + ``markdown.markdown``), in the same run;
* times a first publish of every item to a fresh SQLite database and a second one (all
  unchanged), then the check again, now with the ``content.lock`` the publish wrote;
* measures the memory of loading the catalog, in a fresh process;
* times the rendering of every module body, cold (first render) and warm (render cache),
  and a warm page: the preview app's module page when ``lti_tool/web/preview.py`` exists,
  else a render-cache lookup plus a Jinja page embedding the body.

It prints a table of the figures against the targets and exits 1 on a missed target, 2
when the bench itself could not run (for instance a generated library with errors).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markdown
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # lti_tool, also when the package is not installed

import procstats  # noqa: E402  (bench/ is the script folder)

from lti_tool.content.catalog import CheckResult, content_fingerprint, load_catalog  # noqa: E402
from lti_tool.content.diagnostics import Diagnostic  # noqa: E402
from lti_tool.content.model import Catalog, Module  # noqa: E402
from lti_tool.content.render import split_front_matter  # noqa: E402
from lti_tool.content.render_cache import RenderCache  # noqa: E402

# Item folders of the shipped content, in the order a partial last clone set keeps them:
# modules first, badges last (badges refer to modules and experiments, nothing refers to
# a badge but another badge).
KINDS = (("modules", "module.yaml"), ("experiments", "experiment.yaml"), ("badges", "badge.yaml"))
TEXT_SUFFIXES = (".yaml", ".md")
LANGS = ("fr-CA", "en")
PAGE_LANG = "fr-CA"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "content bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "content bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
# The page the fallback renders: what a module page needs at least (title, sections).
PAGE_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<main>
<h1>{{ title }}</h1>
{% for section_id, section_html in sections %}
<section id="section-{{ section_id }}">{{ section_html | safe }}</section>
{% endfor %}
</main>
</body>
</html>
"""


@dataclass(frozen=True)
class Targets:
    """The issue's acceptance thresholds."""

    max_check_seconds: float = 3.0
    max_check_ratio: float = 3.0
    max_warm_page_ms: float = 2.0
    max_memory_mb: float = 300.0


class BenchError(RuntimeError):
    """The bench could not measure (not a missed target): exit 2."""


# -- small helpers ----------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, after a full collection so that garbage left by
    the previous step is not charged to this one."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def status_kib(name: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM); 0 when unavailable."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def git(root: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *argv],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def tool_revision() -> str:
    try:
        head = git(ROOT, "rev-parse", "--short", "HEAD")
        dirty = git(ROOT, "status", "--porcelain", "--", "lti_tool")
    except (OSError, subprocess.SubprocessError, BenchError):
        return "unknown (no git)"
    return head + (" + uncommitted changes in lti_tool" if dirty else "")


def errors_and_warnings(diagnostics: list[Diagnostic]) -> tuple[list[Diagnostic], int]:
    errors = [d for d in diagnostics if d.severity == "error"]
    return errors, sum(1 for d in diagnostics if d.severity == "warning")


# -- generating the library -------------------------------------------------------------


@dataclass
class Library:
    root: Path
    items: int
    sets: int
    yaml_files: list[Path] = field(default_factory=list)
    md_files: list[Path] = field(default_factory=list)
    other_files: int = 0
    bytes: int = 0


def shipped_items(source: Path) -> list[tuple[str, Path]]:
    """(kind folder, item folder) of every shipped item, modules first."""
    found = []
    for kind_dir, filename in KINDS:
        base = source / kind_dir
        if base.is_dir():
            found += [(kind_dir, p) for p in sorted(base.iterdir()) if (p / filename).is_file()]
    return found


def rewrite_ids(text: str, pattern: re.Pattern[str], mapping: dict[str, str]) -> str:
    return pattern.sub(lambda match: mapping[match.group(1)], text)


def generate(source: Path, dest: Path, items: int) -> Library:
    """Clone the shipped items under ``<id>-k<k>`` until there are ``items`` of them.

    Every occurrence of a shipped id in a clone's YAML and Markdown (its own ``id:``, the
    body front matter's ``module:``, prerequisites, linked experiment and modules, badge
    rules, ``::: experiment`` blocks) becomes the id of the same set. The last set may be
    partial: it keeps the first items in ``KINDS`` order, and its references to items it
    does not have point to set 0, which is always complete.
    """
    shipped = shipped_items(source)
    per_set = len(shipped)
    if per_set == 0:
        raise BenchError(f"no shipped content under {source}")
    if items < per_set:
        raise BenchError(f"--items must be at least {per_set} (one full clone set)")
    ids = [folder.name for _, folder in shipped]
    pattern = re.compile(
        r"(?<![a-z0-9-])(" + "|".join(map(re.escape, sorted(ids, key=len, reverse=True))) + ")"
        r"(?![a-z0-9-])"
    )
    sets = -(-items // per_set)
    library = Library(dest, items, sets)
    issuer = source / "badges" / "issuer.yaml"
    if issuer.is_file():
        (dest / "badges").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(issuer, dest / "badges" / "issuer.yaml")
        library.yaml_files.append(dest / "badges" / "issuer.yaml")
    texts: dict[Path, str] = {}  # shipped files, read once
    for k in range(sets):
        keep = min(per_set, items - k * per_set)
        kept = set(ids[:keep])
        mapping = {i: f"{i}-k{k}" if i in kept else f"{i}-k0" for i in ids}
        for kind_dir, folder in shipped[:keep]:
            target = dest / kind_dir / mapping[folder.name]
            target.mkdir(parents=True)
            for path in sorted(folder.rglob("*")):
                out = target / path.relative_to(folder)
                if path.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                if path.suffix in TEXT_SUFFIXES:
                    if path not in texts:
                        texts[path] = path.read_text(encoding="utf-8")
                    text = rewrite_ids(texts[path], pattern, mapping)
                    out.write_text(text, encoding="utf-8")
                    (library.yaml_files if path.suffix == ".yaml" else library.md_files).append(out)
                else:
                    shutil.copyfile(path, out)
                    library.other_files += 1
    library.bytes = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return library


def commit_library(root: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    git(root, "init", "--quiet", "--initial-branch=main", env=env)
    git(root, "add", "--all", env=env)
    git(root, "commit", "--quiet", "--no-verify", "-m", "generated content library", env=env)
    return git(root, "rev-parse", "HEAD", env=env)


# -- check and the plain pass -----------------------------------------------------------


def plain_pass(library: Library) -> int:
    """The least a checker must do with the same files: parse every YAML file with
    libyaml and render every body with Python-Markdown. Returns the files read."""
    for path in library.yaml_files:
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    for path in library.md_files:
        _, body, _ = split_front_matter(path.read_text(encoding="utf-8"))
        markdown.markdown(body, extensions=["tables"])
    return len(library.yaml_files) + len(library.md_files)


@dataclass
class Series:
    """Repeated timings of one operation, in seconds."""

    runs: list[float]

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def time_check(root: Path, repeat: int) -> tuple[Series, CheckResult]:
    runs = []
    result: CheckResult | None = None
    for _ in range(repeat):
        result = None  # the previous catalog is garbage before the next run, not during it
        seconds, result = timed(lambda: load_catalog(root))
        runs.append(seconds)
    assert result is not None
    return Series(runs), result


# -- publish ----------------------------------------------------------------------------


@dataclass
class PublishFigures:
    first: float
    first_published: int
    second: float
    second_unchanged: int
    second_published: int


def time_publish(root: Path, tmp: Path) -> PublishFigures:
    from lti_tool.db import Database
    from lti_tool.models import Base
    from lti_tool.services.content import publish

    db = Database(f"sqlite:///{tmp / 'bench.sqlite3'}")
    try:
        Base.metadata.create_all(db.engine)
        with db.session_factory() as session:
            first, report1 = timed(lambda: publish(session, root))
        with db.session_factory() as session:
            second, report2 = timed(lambda: publish(session, root))
    finally:
        db.dispose()
    return PublishFigures(
        first, len(report1.published), second, len(report2.unchanged), len(report2.published)
    )


# -- memory -----------------------------------------------------------------------------


def memory_probe(root: Path) -> dict[str, float]:
    """Run in a fresh process (``--memory-probe``): what loading the catalog costs it.

    RSS first, without tracemalloc (which has its own overhead), then tracemalloc around
    a second load. Figures in MiB.
    """
    gc.collect()
    rss_before = status_kib("VmRSS")
    hwm_before = status_kib("VmHWM")
    result: CheckResult | None = load_catalog(root)
    gc.collect()
    rss_after = status_kib("VmRSS")
    hwm_after = status_kib("VmHWM")
    items = result.item_count if result else 0
    result = None
    gc.collect()
    tracemalloc.start()
    result = load_catalog(root)
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mib = 1024.0
    return {
        "items": items,
        "rss_before": rss_before / mib,
        "rss_after": rss_after / mib,
        "hwm_before": hwm_before / mib,
        "hwm_after": hwm_after / mib,
        "rss_peak_growth": (max(hwm_after, rss_after) - rss_before) / mib,
        "rss_retained_growth": (rss_after - rss_before) / mib,
        "traced_peak": peak / mib / mib,
        "traced_retained": retained / mib / mib,
    }


def measure_memory(root: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-probe", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"memory probe failed:\n{done.stderr.strip()[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- render -----------------------------------------------------------------------------


def make_cache(catalog: Catalog) -> RenderCache:
    """A render cache with callbacks that return small fixed HTML, like the web layer's
    but without their cost."""

    def question_html(module: Module, qid: str, lang: str) -> str:
        return f'<form class="self-check" data-question="{qid}" lang="{lang}"></form>'

    def experiment_html(exp_id: str, lang: str) -> str:
        return f'<a class="experiment-card" href="/experiments/{exp_id}?lang={lang}"></a>'

    def media_url(module: Module, path: str) -> str:
        return f"/media/{module.id}/{module.version}/{path}"

    return RenderCache(
        catalog, question_html=question_html, experiment_html=experiment_html, media_url=media_url
    )


@dataclass
class RenderFigures:
    bodies: int
    cold_total: float
    cold: list[float]
    warm: list[float]


def time_render(cache: RenderCache, module_ids: list[str], warm_rounds: int) -> RenderFigures:
    cold: list[float] = []
    gc.collect()
    for module_id in module_ids:
        for lang in LANGS:
            start = time.perf_counter()
            cache.module(module_id, lang)
            cold.append(time.perf_counter() - start)
    warm: list[float] = []
    gc.collect()
    for _ in range(warm_rounds):
        for module_id in module_ids:
            for lang in LANGS:
                start = time.perf_counter()
                cache.module(module_id, lang)
                warm.append(time.perf_counter() - start)
    return RenderFigures(len(cold), sum(cold), cold, warm)


@dataclass
class PageFigures:
    how: str
    url: str
    requests: int
    times: list[float]
    #: One more round of requests over the same pages (for --profile).
    again: Callable[[], Any] | None = None


def page_ids(module_ids: list[str], count: int) -> list[str]:
    """``count`` modules spread over the library (several sets, every shipped module)."""
    step = max(1, len(module_ids) // count)
    return module_ids[::step][:count]


def time_fallback_page(
    cache: RenderCache, catalog: Catalog, ids: list[str], requests: int, seconds: float
) -> PageFigures:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(PAGE_TEMPLATE)

    def page(module_id: str) -> str:
        body = cache.module(module_id, PAGE_LANG)
        module = catalog.modules[module_id]
        return template.render(
            lang=PAGE_LANG, title=module.title.get(PAGE_LANG), sections=body.sections
        )

    for module_id in ids:  # warm-up: one request per page
        page(module_id)
    times = []
    gc.collect()
    deadline = time.perf_counter() + seconds
    for n in range(requests):
        start = time.perf_counter()
        page(ids[n % len(ids)])
        times.append(time.perf_counter() - start)
        if start > deadline:
            break
    return PageFigures(
        "render-cache lookup + Jinja render of a minimal page embedding the body",
        "(in process)",
        len(times),
        times,
    )


PREVIEW_MODULE = "lti_tool.web.preview"


def describe_failure(exc: BaseException) -> str:
    """The exception and the innermost line of the project it went through."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/lti_tool/" in f.filename]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" (at {Path(frame.filename).relative_to(ROOT)}:{frame.lineno} in {frame.name})"
    kind = "" if isinstance(exc, BenchError) else f"{type(exc).__name__}: "
    return f"{kind}{exc}{where}"


@contextlib.contextmanager
def app_errors() -> Iterator[list[BaseException]]:
    """The exceptions the tool's error handler logs (to ``lti_tool``), kept for the report
    instead of printed."""
    errors: list[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                errors.append(record.exc_info[1])

    logger = logging.getLogger("lti_tool")
    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [Keep()], False
    try:
        yield errors
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def time_fingerprint(root: Path, runs: int) -> list[float]:
    """Seconds of :func:`content_fingerprint` of the whole library, ``runs`` times."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        content_fingerprint(root)
        times.append(time.perf_counter() - start)
    return times


def preview_exists() -> bool:
    return importlib.util.find_spec(PREVIEW_MODULE) is not None


def preview_factory() -> Callable[[Path], Any]:
    """``create_preview_app`` of the preview module (its import errors propagate)."""
    factory = getattr(importlib.import_module(PREVIEW_MODULE), "create_preview_app", None)
    if not callable(factory):
        raise BenchError(f"{PREVIEW_MODULE} has no create_preview_app(content_root)")
    return factory


def module_page_url(app: Any, module_id: str, url_template: str | None) -> str:
    """The preview's module page for ``module_id`` in ``PAGE_LANG``, found in its URL map
    (a GET rule with ``module`` in it whose arguments are the module id and maybe the
    language), unless ``--page-url`` gives it."""
    if url_template:
        return url_template.format(id=module_id, lang=PAGE_LANG)
    adapter = app.url_map.bind("localhost")
    candidates = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or "module" not in rule.rule:
            continue
        lang_args = [a for a in rule.arguments if "lang" in a]
        id_args = [a for a in rule.arguments if a not in lang_args]
        if len(id_args) != 1 or len(lang_args) > 1:
            continue
        candidates.append((len(rule.arguments), rule, id_args[0], lang_args))
    if not candidates:
        raise BenchError(
            "no module page in the preview's URL map: give it with --page-url "
            "'/modules/{id}?lang={lang}'"
        )
    _, rule, id_arg, lang_args = min(candidates, key=lambda c: (c[0], c[1].rule))
    values = {id_arg: module_id} | {a: PAGE_LANG for a in lang_args}
    url = str(adapter.build(rule.endpoint, values))
    return url if lang_args else f"{url}?lang={PAGE_LANG}"


def time_preview_page(
    factory: Callable[[Path], Any],
    root: Path,
    ids: list[str],
    requests: int,
    seconds: float,
    url_template: str | None,
) -> PageFigures:
    """Server time of the preview's module page: from the WSGI call to the last byte of
    the body, measured inside the app around ``wsgi_app`` (the test client's own work of
    building the request and parsing the response is not in it)."""
    app = factory(root)
    times: list[float] = []
    inner = app.wsgi_app

    def timed_app(environ: Any, start_response: Any) -> Any:
        start = time.perf_counter()
        response = inner(environ, start_response)
        try:
            chunks = list(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        times.append(time.perf_counter() - start)
        return chunks

    app.wsgi_app = timed_app
    client = app.test_client()
    urls = [module_page_url(app, module_id, url_template) for module_id in ids]
    for url in urls:  # warm-up: one request per page
        with app_errors() as errors:
            answer = client.get(url)
        if answer.status_code != 200:
            cause = f": {describe_failure(errors[0])}" if errors else ""
            raise BenchError(f"GET {url}: HTTP {answer.status_code}{cause}")
        if "<h2" not in answer.get_data(as_text=True):
            raise BenchError(f"GET {url}: no rendered body (no <h2>) in the page")
    times.clear()
    gc.collect()
    deadline = time.perf_counter() + seconds
    for n in range(requests):
        answer = client.get(urls[n % len(urls)])
        if answer.status_code != 200:
            raise BenchError(f"GET {urls[n % len(urls)]}: HTTP {answer.status_code}")
        if time.perf_counter() > deadline:
            break
    measured = times[:]

    def again() -> None:
        for url in urls:
            client.get(url)

    return PageFigures(
        "preview app module page, Flask test client", urls[0], len(measured), measured, again
    )


# -- report -----------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    value: str
    target: str = ""
    passed: bool | None = None  # None: information, no target

    @property
    def status(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def render_table(rows: list[Row]) -> str:
    header = Row("figure", "value", "target")
    widths = [
        max(len(r.figure) for r in [header, *rows]),
        max(len(r.value) for r in [header, *rows]),
        max(len(r.target) for r in [header, *rows]),
    ]
    lines = []
    for i, row in enumerate([header, *rows]):
        status = "result" if i == 0 else row.status
        lines.append(
            f"{row.figure:<{widths[0]}}  {row.value:>{widths[1]}}  "
            f"{row.target:<{widths[2]}}  {status}".rstrip()
        )
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


def us(seconds: float) -> str:
    return f"{1e6 * seconds:.1f} us"


# -- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Content benchmark: check, publish and render a generated library.",
    )
    parser.add_argument("--items", type=int, default=1000, help="library size (default 1000)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the check and the plain pass (default 3)"
    )
    parser.add_argument(
        "--requests", type=int, default=500, help="warm page requests (default 500)"
    )
    parser.add_argument(
        "--page-seconds",
        type=float,
        default=60,
        help="stop the warm page requests after this many seconds (default 60)",
    )
    parser.add_argument(
        "--warm-rounds",
        type=int,
        default=20,
        help="rounds of warm render-cache lookups over every body (default 20)",
    )
    parser.add_argument(
        "--page-url",
        help="the preview's module page, with {id} and {lang} (default: found in its URL map)",
    )
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the content to clone (default: the project)"
    )
    parser.add_argument(
        "--time-limit", type=int, default=900, help="abort after this many seconds (default 900)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measures, cProfile a check, a publish and the cold renders",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--memory-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.requests < 1 or args.warm_rounds < 1:
        parser.error("--repeat, --requests and --warm-rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="content-bench-"))

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"the run took longer than --time-limit {args.time_limit} s")

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(args.time_limit)
    try:
        return run(args, tmp)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (BenchError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
        print(f"\nbenchmark aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        if args.keep:
            print(f"temporary folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    print(f"{title}...", end=" ", flush=True)
    start = time.perf_counter()
    yield
    print(f"done in {time.perf_counter() - start:.1f} s", flush=True)


def run(args: argparse.Namespace, tmp: Path) -> int:
    targets = Targets()
    print(
        f"content benchmark: {args.items} items, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, libyaml {'yes' if yaml.__with_libyaml__ else 'NO'}\n"
        f"tool at {tool_revision()}; run folder: {tmp}",
        flush=True,
    )
    root = tmp / "content"
    root.mkdir()
    with step("generating the library"):
        library = generate(args.source.resolve(), root, args.items)
        commit_library(root)
    print(
        f"  {library.items} items in {library.sets} clone sets: {len(library.yaml_files)} YAML, "
        f"{len(library.md_files)} Markdown, {library.other_files} other files, "
        f"{library.bytes / 1e6:.1f} MB"
    )

    # The library must check clean, or every figure below measures error paths.
    with step(f"check, {args.repeat} runs"):
        check, result = time_check(root, args.repeat)
    errors, warnings = errors_and_warnings(result.diagnostics)
    if errors or result.item_count != args.items:
        for diagnostic in errors[:10]:
            print(f"  {diagnostic}", file=sys.stderr)
        raise BenchError(
            f"the generated library has {len(errors)} errors and {result.item_count} items "
            f"(expected 0 errors, {args.items} items)"
        )
    print(f"  {result.item_count} items, 0 errors, {warnings} warnings")
    # Only the catalog being measured stays alive: a second one would slow every later
    # step (the cyclic garbage collector walks all live objects).
    del result

    with step(f"plain pass, {args.repeat} runs"):
        plain = Series([timed(lambda: plain_pass(library))[0] for _ in range(args.repeat)])

    with step("publish, twice"):
        published = time_publish(root, tmp)
    if published.first_published != args.items or published.second_unchanged != args.items:
        raise BenchError(
            f"publish: {published.first_published} published then "
            f"{published.second_unchanged} unchanged (expected {args.items} each)"
        )

    with step(f"check with content.lock, {args.repeat} runs"):
        check_locked, locked_result = time_check(root, args.repeat)
    locked_errors, _ = errors_and_warnings(locked_result.diagnostics)
    if locked_errors:
        raise BenchError(f"after publish, the check reports {len(locked_errors)} errors")

    with step("memory of loading the catalog, in a fresh process"):
        memory = measure_memory(root)

    catalog = locked_result.catalog
    del locked_result
    module_ids = sorted(catalog.modules)
    cache = make_cache(catalog)
    with step(f"rendering {len(module_ids)} modules x {len(LANGS)} languages"):
        render = time_render(cache, module_ids, args.warm_rounds)

    ids = page_ids(module_ids, 16)
    page_error = ""
    page: PageFigures | None = None
    with step(f"warm page, up to {args.requests} requests"):
        if preview_exists():
            try:
                page = time_preview_page(
                    preview_factory(), root, ids, args.requests, args.page_seconds, args.page_url
                )
            except Exception as exc:  # the preview failing is the tool's miss, not the bench's
                page_error = describe_failure(exc)
        # Without the preview, or when it fails, the least a page does: for the target in
        # the first case, for information in the second.
        fallback = time_fallback_page(cache, catalog, ids, args.requests, args.page_seconds)
    with step("freshness check: content_fingerprint of the library"):
        fingerprint = time_fingerprint(root, 20)

    # -- figures and targets
    ratio = check.best / plain.best
    ratio_locked = check_locked.best / plain.best
    memory_peak = max(memory["rss_peak_growth"], memory["traced_peak"])
    rows = [
        Row(
            f"check, {args.items} items (best of {args.repeat})",
            f"{check.best:.2f} s",
            f"< {targets.max_check_seconds:g} s",
            check.best < targets.max_check_seconds,
        ),
        Row("  median", f"{check.median:.2f} s"),
        Row(
            f"plain pass, same files (best of {args.repeat})",
            f"{plain.best:.2f} s",
            "",
        ),
        Row(
            "check / plain pass",
            f"{ratio:.2f}",
            f"<= {targets.max_check_ratio:g}",
            ratio <= targets.max_check_ratio,
        ),
        Row(
            "check with content.lock (best)",
            f"{check_locked.best:.2f} s",
            f"< {targets.max_check_seconds:g} s",
            check_locked.best < targets.max_check_seconds,
        ),
        Row("  median", f"{check_locked.median:.2f} s"),
        Row(
            "check with content.lock / plain pass",
            f"{ratio_locked:.2f}",
            f"<= {targets.max_check_ratio:g}",
            ratio_locked <= targets.max_check_ratio,
        ),
        Row(
            f"first publish ({published.first_published} new versions)",
            f"{published.first:.2f} s",
        ),
        Row(
            f"second publish ({published.second_unchanged} unchanged)",
            f"{published.second:.2f} s",
        ),
        Row(
            "memory of loading: peak (max of RSS, traced)",
            f"{memory_peak:.0f} MB",
            f"< {targets.max_memory_mb:g} MB",
            memory_peak < targets.max_memory_mb,
        ),
        Row("  RSS: peak growth", f"{memory['rss_peak_growth']:.0f} MB"),
        Row("  RSS: retained growth", f"{memory['rss_retained_growth']:.0f} MB"),
        Row(
            "  RSS: before / after / VmHWM",
            f"{memory['rss_before']:.0f} / {memory['rss_after']:.0f} / "
            f"{memory['hwm_after']:.0f} MB",
        ),
        Row("  tracemalloc: peak", f"{memory['traced_peak']:.0f} MB"),
        Row("  tracemalloc: retained (catalog)", f"{memory['traced_retained']:.0f} MB"),
        Row(f"cold render, {render.bodies} bodies: total", f"{render.cold_total:.2f} s"),
        Row("  per body: mean", ms(statistics.fmean(render.cold))),
        Row("  per body: p99", ms(procstats.percentile(render.cold, 0.99))),
        Row(
            f"warm render-cache lookup ({len(render.warm)}): mean",
            us(statistics.fmean(render.warm)),
        ),
        Row("  p99", us(procstats.percentile(render.warm, 0.99))),
    ]
    fallback_p99 = procstats.percentile(fallback.times, 0.99)
    page_target = f"< {targets.max_warm_page_ms:g} ms"
    if page is not None:
        p99 = procstats.percentile(page.times, 0.99)
        rows += [
            Row(
                f"warm preview page p99 ({page.requests} requests)",
                ms(p99),
                page_target,
                p99 < targets.max_warm_page_ms / 1000,
            ),
            Row("  p50", ms(procstats.percentile(page.times, 0.5))),
        ]
    elif page_error:
        rows.append(Row("warm preview page: failed", "-", page_target, False))
    fallback_checked = page is None and not page_error
    rows += [
        Row(
            f"warm page, cache + Jinja, p99 ({fallback.requests} requests)",
            ms(fallback_p99),
            page_target if fallback_checked else "",
            fallback_p99 < targets.max_warm_page_ms / 1000 if fallback_checked else None,
        ),
        Row("  p50", ms(procstats.percentile(fallback.times, 0.5))),
        Row(
            f"content_fingerprint, {library.items} items: median",
            ms(statistics.median(fingerprint)),
        ),
    ]

    print()
    print(render_table(rows))
    print()
    if page is not None:
        print(f"warm page target measured on: {page.how} (first URL {page.url})")
    elif page_error:
        print(
            f"warm page target measured on: {PREVIEW_MODULE}, which exists but failed: "
            f"{page_error}\n  (the cache + Jinja page is shown for information)"
        )
    else:
        print(f"warm page target measured on: {fallback.how}")
    print(
        "check with content.lock: after the publish, every item is in content.lock, as in the "
        "project's own repository.\ncontent_fingerprint: the stat of every content file that "
        "load_catalog_cached (and the preview, on each request) does to notice edits."
    )

    if args.profile:
        from lti_tool.db import Database
        from lti_tool.models import Base
        from lti_tool.services.content import publish

        print()
        print(
            procstats.profile_text(
                "check with content.lock (load_catalog)", lambda: load_catalog(root)
            )
        )
        db = Database(f"sqlite:///{tmp / 'profile.sqlite3'}")
        try:
            Base.metadata.create_all(db.engine)
            with db.session_factory() as session:
                print()
                print(procstats.profile_text("first publish", lambda: publish(session, root)))
        finally:
            db.dispose()
        if page is not None and page.again is not None:
            print()
            print(procstats.profile_text(f"warm preview page, {len(ids)} requests", page.again))
        fresh = make_cache(catalog)
        print()
        print(
            procstats.profile_text(
                "cold render of every body",
                lambda: [fresh.module(m, lang) for m in module_ids for lang in LANGS],
            )
        )

    failed = [r.figure.strip() for r in rows if r.passed is False]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "settings": {k: str(v) for k, v in vars(args).items()},
                    "tool_revision": tool_revision(),
                    "rows": [
                        {"figure": r.figure.strip(), "value": r.value, "target": r.target}
                        | {"passed": r.passed}
                        for r in rows
                    ],
                    "check_runs": check.runs,
                    "check_locked_runs": check_locked.runs,
                    "plain_runs": plain.runs,
                    "memory": memory,
                    "page": page.how if page else page_error or fallback.how,
                    "failed": failed,
                },
                indent=2,
            )
        )
        print(f"\nresults: {args.json}")
    if failed:
        print(f"\nFAIL: {'; '.join(failed)}")
        return 1
    print("\nPASS: every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
