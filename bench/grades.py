"""Grade delivery benchmark: 10,000 queued scores through two ``lti-tool worker`` processes.

``make bench-grades`` (or ``.venv/bin/python bench/grades.py --help``). What is measured
and how to read the output: ``bench/README.md``.

The run, all on 127.0.0.1 and in a temporary folder:

* uses the PostgreSQL database ``bench`` (created if missing; the tool's tables dropped
  and created again from ``lti_tool.models.Base.metadata``), or, when PostgreSQL cannot
  be reached, a SQLite file (the output says so);
* starts the platform harness in this process (``tests.functional.platform.Platform``:
  Open edX's consumer for tokens, lti1p3platform serving AGS on a ThreadingHTTPServer),
  with ``faults.latency`` added to every AGS request and ``faults.failure_rate`` of the
  score POSTs answered 503 (seeded), and registers it with the tool;
* writes the tool's key, the registration, a course and a resource link, and inserts
  ``--rows`` pending outbox rows at once: one per learner (distinct ``userId``), all on
  the declarative line item 1 (``platform.ags_lineitem_url``), score 1 / 1, Completed /
  FullyGraded, an ISO timestamp with offset;
* starts ``--workers`` ``lti-tool worker`` processes (the console script, settings in the
  environment as in production) and times until every row is in a terminal state;
* checks that every row is ``delivered`` and that the platform holds exactly one score
  per learner, with the values sent; counts POSTs, injected failures and retries.

It exits 1 when the delivery took longer than the target (60 s) or anything is missing,
and 2 when the bench could not run (a worker that dies, a database that cannot be set up).
The worker processes are stopped on any exit.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # lti_tool and tests, also when the package is not installed

import procstats  # noqa: E402  (bench/ is the script folder)

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
TOOL_BASE_URL = "http://127.0.0.1:5999"  # never served: the workers only send
# Variables the tool reads: the bench sets its own, a developer's shell must not leak in.
TOOL_VARIABLES = (
    "DATAIDE_ENV",
    "BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "KEY_ENCRYPTION_KEY",
    "CONTENT_PATH",
    "INSTANCE_PATH",
    "GRADE_WORKER",
    "GRADE_WORKER_CONCURRENCY",
    "GRADE_WORKER_POLL_SECONDS",
    "HTTP_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "FLASK_APP",
)
SERVICE_COMMANDS = ("postgres", "redis-server")
# Share of the machine that other processes (and the kernel) may use before the run is
# flagged: the workers, PostgreSQL and the platform need both cores.
FOREIGN_WARNING = 0.10


class BenchError(RuntimeError):
    """The bench could not measure (not a missed target): exit 2."""


# -- worker processes ----------------------------------------------------------------------


class Workers:
    """The ``lti-tool worker`` processes, each in its own session, stopped on any exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        atexit.register(self.stop)

    def start(self, n: int, argv: list[str], env: dict[str, str]) -> None:
        for i in range(n):
            with (self.log_dir / f"worker-{i}.log").open("wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )

    def log(self, i: int) -> str:
        path = self.log_dir / f"worker-{i}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                tail = "\n".join(self.log(i).splitlines()[-30:])
                raise BenchError(f"worker {i} exited with {proc.returncode}:\n{tail}")

    def cpu_seconds(self) -> list[float]:
        out = []
        for proc in self.procs:
            stat = procstats.read_proc(proc.pid)
            out.append(stat.ticks / procstats.TICKS_PER_SECOND if stat else float("nan"))
        return out

    def stop(self) -> None:
        """SIGTERM (the worker finishes its requests in flight), then SIGKILL the session."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def outcomes(self) -> list[dict[str, int]]:
        """What each worker says it did (its last line, written when it stops)."""
        out = []
        for i in range(len(self.procs)):
            found: dict[str, int] = {}
            for line in self.log(i).splitlines():
                if line.startswith("grade worker stopped: "):
                    with contextlib.suppress(ValueError):
                        found = json.loads(line.removeprefix("grade worker stopped: "))
            out.append(found)
        return out


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the finally blocks: workers stopped, folder removed


# -- database ------------------------------------------------------------------------------


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).split("?", 1)[0]


def prepare_database(url: str, tmp: Path) -> tuple[str, str]:
    """(URL to use, a note): PostgreSQL's ``bench`` database (created if missing), or a
    SQLite file in the temporary folder when PostgreSQL cannot be reached."""
    if not url.startswith("postgresql"):
        return url, ""
    import psycopg
    from psycopg import sql

    conninfo = _pg_conninfo(url)
    dbname = urlsplit(conninfo).path.lstrip("/") or "postgres"
    try:
        try:
            psycopg.connect(conninfo, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise
            admin = urlsplit(conninfo)._replace(path="/postgres").geturl()
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.OperationalError as exc:
        fallback = f"sqlite:///{tmp / 'grades.sqlite3'}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return fallback, f"PostgreSQL unreachable ({first}): SQLite fallback"
    return url, ""


@dataclass
class Fixture:
    registration_pk: int
    resource_link_pk: int
    subs: list[str]
    timestamp: str


def reset_schema(url: str) -> None:
    from sqlalchemy import create_engine

    from lti_tool.models import Base

    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def write_fixture(url: str, platform: Any, rows: int) -> Fixture:
    """Registration, course, resource link, line item and ``rows`` pending outbox rows."""
    from sqlalchemy import insert

    from lti_tool.db import Database
    from lti_tool.domain import grades as g
    from lti_tool.models import (
        OUTBOX_PENDING,
        Context,
        Deployment,
        GradeOutboxRow,
        LineItem,
        ResourceLink,
        utcnow,
    )
    from lti_tool.services.platforms import PlatformSpec, add_platform
    from tests.functional.platform import DEFAULT_CONTEXT, DEFAULT_RESOURCE_LINK_ID

    db = Database(url)
    try:
        with db.session() as session:
            registration = add_platform(
                session,
                PlatformSpec(
                    issuer=platform.issuer,
                    client_id=platform.client_id,
                    auth_login_url=platform.auth_login_url,
                    auth_token_url=platform.auth_token_url,
                    key_set_url=platform.keyset_url,
                    deployment_ids=(platform.deployment_id,),
                ),
            )
            deployment = session.query(Deployment).filter_by(registration_id=registration.id).one()
            context = Context(
                issuer=platform.issuer,
                context_id=DEFAULT_CONTEXT["id"],
                label=DEFAULT_CONTEXT["label"],
                title=DEFAULT_CONTEXT["title"],
                deployment_id=deployment.id,
            )
            session.add(context)
            session.flush()
            link = ResourceLink(
                issuer=platform.issuer,
                resource_link_id=DEFAULT_RESOURCE_LINK_ID,
                title="DATAide",
                context_pk=context.id,
                deployment_id=deployment.id,
            )
            session.add(link)
            session.flush()
            resource_id = g.resource_id("m01-maturite", 1)
            session.add(
                LineItem(
                    resource_link_pk=link.id,
                    resource_id=resource_id,
                    url=platform.ags_lineitem_url,
                    from_launch=True,
                )
            )
            now = utcnow()
            timestamp = g.iso_timestamp(datetime.now(UTC))
            subs = [f"bench-learner-{i:05d}" for i in range(rows)]
            session.execute(
                insert(GradeOutboxRow),
                [
                    {
                        "registration_pk": registration.id,
                        "resource_link_pk": link.id,
                        "attempt_pk": None,
                        "user_pk": None,
                        "user_sub": sub,
                        "line_item_url": platform.ags_lineitem_url,
                        "lineitems_url": platform.ags_lineitems_url,
                        "resource_link_id": DEFAULT_RESOURCE_LINK_ID,
                        "resource_id": resource_id,
                        "tag": g.COMPLETION_TAG,
                        "label": "Module 1",
                        "score_given": 1.0,
                        "score_maximum": 1.0,
                        "activity_progress": g.ACTIVITY_COMPLETED,
                        "grading_progress": g.GRADING_FULLY_GRADED,
                        "timestamp": timestamp,
                        "state": OUTBOX_PENDING,
                        "tries": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for sub in subs
                ],
            )
            return Fixture(registration.id, link.id, subs, timestamp)
    finally:
        db.dispose()


def tool_key(url: str, kek: str) -> str:
    """Create the tool's signing key; returns its public PEM (the platform's copy)."""
    from lti_tool.db import Database
    from lti_tool.lti.keys import ensure_current_key, signing_key

    db = Database(url)
    try:
        with db.session() as session:
            ensure_current_key(session, kek)
        with db.session() as session:
            return str(signing_key(session, kek).public_pem)
    finally:
        db.dispose()


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Progress:
    """Outbox states over time, read by polling the database, and why rows were
    rescheduled: (row, tries) -> (last_status, last_error), seen while the row waits (a
    later success overwrites them in the row)."""

    points: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    waits: dict[tuple[int, int], tuple[int | None, str]] = field(default_factory=dict)

    def retry_reasons(self) -> dict[str, int]:
        reasons = collections.Counter(
            f"{status if status is not None else 'no answer'}: {error[:70]}"
            for status, error in self.waits.values()
        )
        return dict(reasons.most_common(6))

    def first_time(self, predicate: Any) -> float | None:
        for t, counts in self.points:
            if predicate(counts):
                return t
        return None


def poll_until_terminal(
    url: str,
    rows: int,
    workers: Workers,
    started: float,
    timeout: float,
    interval: float,
    quiet: bool,
) -> tuple[Progress, bool]:
    """Poll the outbox until every row is terminal or ``timeout``; (progress, finished)."""
    from sqlalchemy import create_engine, func, select

    from lti_tool.models import OUTBOX_PENDING, OUTBOX_TERMINAL, GradeOutboxRow

    engine = create_engine(url)
    progress = Progress()
    next_print = 5.0
    try:
        while True:
            workers.check_alive()
            with engine.connect() as conn:
                counts = {
                    state: int(n)
                    for state, n in conn.execute(
                        select(GradeOutboxRow.state, func.count()).group_by(GradeOutboxRow.state)
                    )
                }
                for row_id, tries, status, error in conn.execute(
                    select(
                        GradeOutboxRow.id,
                        GradeOutboxRow.tries,
                        GradeOutboxRow.last_status,
                        GradeOutboxRow.last_error,
                    ).where(GradeOutboxRow.state == OUTBOX_PENDING, GradeOutboxRow.tries > 0)
                ):
                    progress.waits[(int(row_id), int(tries))] = (status, error or "")
            elapsed = time.monotonic() - started
            progress.points.append((elapsed, counts))
            terminal = sum(n for s, n in counts.items() if s in OUTBOX_TERMINAL)
            if not quiet and elapsed >= next_print:
                print(f"  {elapsed:6.1f} s  {json.dumps(dict(sorted(counts.items())))}", flush=True)
                next_print += 5.0
            if terminal >= rows:
                return progress, True
            if elapsed > timeout:
                return progress, False
            time.sleep(interval)
    finally:
        engine.dispose()


@dataclass
class RowFigures:
    states: dict[str, int]
    tries: dict[int, int]  # tries -> rows


def row_figures(url: str) -> RowFigures:
    from sqlalchemy import create_engine, func, select

    from lti_tool.models import GradeOutboxRow

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            states = {
                s: int(n)
                for s, n in conn.execute(
                    select(GradeOutboxRow.state, func.count()).group_by(GradeOutboxRow.state)
                )
            }
            tries = {
                int(t): int(n)
                for t, n in conn.execute(
                    select(GradeOutboxRow.tries, func.count()).group_by(GradeOutboxRow.tries)
                )
            }
    finally:
        engine.dispose()
    return RowFigures(states, dict(sorted(tries.items())))


@dataclass
class PlatformFigures:
    posts: int
    by_status: dict[int, int]
    injected: int
    users_with_score: int
    wrong_scores: list[str]
    missing: int
    unexpected: int
    duplicate_applied: int
    first_post: float | None
    last_post: float | None
    token_requests: int
    ags_requests: int
    timeline: str


def check_platform(
    platform: Any, fixture: Fixture, post_times: list[float], started: float
) -> PlatformFigures:
    posts = list(platform.score_posts)
    by_status = collections.Counter(int(p["status"]) for p in posts)
    injected = sum(1 for p in posts if p.get("fault") == "transient")
    applied = collections.Counter(
        (p["score"] or {}).get("userId") for p in posts if 200 <= int(p["status"]) < 300
    )
    expected = {
        "scoreGiven": 1.0,
        "scoreMaximum": 1.0,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": fixture.timestamp,
    }
    scores = dict(platform.scores)
    wanted = {(1, sub) for sub in fixture.subs}
    wrong = []
    for key in wanted & set(scores):
        score = scores[key]
        bad = {k: score.get(k) for k, v in expected.items() if score.get(k) != v}
        if score.get("userId") != key[1]:
            bad["userId"] = score.get("userId")
        if bad:
            wrong.append(f"{key[1]}: {bad}")
    return PlatformFigures(
        posts=len(posts),
        by_status=dict(sorted(by_status.items())),
        injected=injected,
        users_with_score=len(wanted & set(scores)),
        wrong_scores=wrong,
        missing=len(wanted - set(scores)),
        unexpected=len(set(scores) - wanted),
        duplicate_applied=sum(n - 1 for n in applied.values() if n > 1),
        first_post=min(post_times) - started if post_times else None,
        last_post=max(post_times) - started if post_times else None,
        token_requests=platform.token_requests,
        ags_requests=platform.ags_requests,
        timeline=timeline(post_times, started),
    )


def timeline(post_times: list[float], started: float, step: float = 5.0) -> str:
    """Score POSTs per ``step`` seconds since the workers were started."""
    if not post_times:
        return "(no POST)"
    buckets = collections.Counter(int((t - started) // step) for t in post_times)
    last = max(buckets)
    return " ".join(f"{buckets.get(b, 0)}" for b in range(last + 1))


def outbox_table_stats(url: str) -> dict[str, int]:
    """PostgreSQL's counters for the outbox table (fresh with the table, so the run's own):
    sequential scans (each claim query is one), rows they read, updates, dead rows."""
    if not url.startswith("postgresql"):
        return {}
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
            row = (
                conn.execute(
                    text(
                        "SELECT seq_scan, seq_tup_read, idx_scan, n_tup_upd, n_tup_hot_upd, "
                        "n_dead_tup, autovacuum_count FROM pg_stat_user_tables "
                        "WHERE relname = 'grade_outbox' AND schemaname = current_schema()"
                    )
                )
                .mappings()
                .first()
            )
    except Exception:  # an older server without pg_stat_force_next_flush: no figures
        return {}
    finally:
        engine.dispose()
    return {k: int(v or 0) for k, v in (row or {}).items()}


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows, all sockets of the machine)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return -1
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", -1))
    return -1


def cpu_split(before: procstats.Snapshot, after: procstats.Snapshot) -> dict[str, float]:
    services = {p.pid for p in after.procs.values() if p.comm in SERVICE_COMMANDS}
    gone = {
        p.pid
        for p in before.procs.values()
        if p.comm in SERVICE_COMMANDS and p.pid not in after.procs
    }
    return {
        "bench (platform)": procstats.cpu_between(before, after, [os.getpid()], reaped=False),
        "db/redis": procstats.group_cpu_between(before, after, services, gone),
        "machine busy": after.machine_busy - before.machine_busy,
        "machine total": after.machine_total - before.machine_total,
    }


# -- profile -------------------------------------------------------------------------------


def start_profiles(workers: Workers, tmp: Path) -> list[subprocess.Popen[bytes]]:
    """``py-spy record --gil`` on every worker process, for the whole run: only samples of
    a thread holding the GIL, i.e. where the workers' Python CPU goes (waits for the
    platform, PostgreSQL or Redis are not in it)."""
    import pyspy_profile

    py_spy = pyspy_profile.find_py_spy(Path(sys.executable).parent)
    if py_spy is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    recorders = []
    for i, proc in enumerate(workers.procs):
        with (tmp / f"py-spy-{i}.log").open("wb") as log:
            recorders.append(
                subprocess.Popen(
                    [py_spy, "record", "--pid", str(proc.pid), "--gil", "--rate", "200",
                     "--nolineno", "--format", "raw", "--output", str(tmp / f"worker-{i}.raw")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
    return recorders


def stop_profiles(recorders: list[subprocess.Popen[bytes]]) -> None:
    for recorder in recorders:
        if recorder.poll() is None:
            recorder.send_signal(signal.SIGINT)
    for recorder in recorders:
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(timeout=5)


def print_profiles(tmp: Path, n: int) -> None:
    """One summary of every worker's samples (all threads: claims and deliveries)."""
    import pyspy_profile

    merged = tmp / "workers.raw"
    with merged.open("w") as out:
        for i in range(n):
            raw = tmp / f"worker-{i}.raw"
            if raw.exists():
                for line in raw.read_text().splitlines():
                    out.write(f"worker (bench);{line}\n")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    kept = results / f"grades-workers-{time.strftime('%Y%m%d-%H%M%S')}.raw"
    shutil.copy(merged, kept)
    title = "lti-tool worker processes, samples holding the GIL"
    print()
    print(pyspy_profile.summarise(merged, title, "worker").render(20))
    print(f"collapsed stacks: {kept}")


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Deliver queued scores with lti-tool worker processes to the platform "
        "harness under latency and failures (target: 10,000 in < 60 s, none lost).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=10_000, help="queued scores")
    parser.add_argument("--workers", type=int, default=2, help="lti-tool worker processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="score requests in flight per worker (GRADE_WORKER_CONCURRENCY; the tool's "
        "default is 8)",
    )
    parser.add_argument("--latency", type=float, default=0.05, help="s added to every AGS call")
    parser.add_argument(
        "--failure-rate", type=float, default=0.2, help="share of score POSTs answered 503"
    )
    parser.add_argument("--seed", type=int, default=20261128, help="seed of the failures")
    parser.add_argument("--target", type=float, default=60.0, help="seconds, the target")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="stop waiting after this many seconds (the run then fails)",
    )
    parser.add_argument(
        "--platform-backlog",
        type=int,
        default=128,
        help="listen queue of the platform's server (0: the harness's own 5)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument(
        "--redis", default=DEFAULT_REDIS, help="Redis for the token cache; '' for the database"
    )
    parser.add_argument(
        "--worker-command",
        nargs="+",
        metavar="ARG",
        help="the command that starts a worker, `worker` appended (default: this venv's "
        "lti-tool), e.g. to try a changed worker: --worker-command python my_worker.py",
    )
    parser.add_argument("--poll", type=float, default=0.5, help="s between outbox polls")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="wait up to this many s for an idle machine before starting the workers",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the workers (on-CPU); the profiler slows them: not a figure to check",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the folder (worker logs)")
    return parser.parse_args(argv)


def redis_reachable(url: str) -> str:
    if not url:
        return ""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        print(f"note: Redis unreachable at {url} ({exc}): the token cache is in the database")
        return ""
    return url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grades-"))
    try:
        return run(args, tmp)
    except BenchError as exc:
        print(f"\nERROR (the bench could not measure): {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> int:
    from lti_tool.settings import generate_secrets
    from tests.functional.platform import Platform

    url, note = prepare_database(args.database_url, tmp)
    if note:
        print(f"NOTE: {note}")
    redis_url = redis_reachable(args.redis)
    reset_schema(url)
    secrets = generate_secrets()
    kek = secrets["KEY_ENCRYPTION_KEY"]
    public_pem = tool_key(url, kek)

    with Platform(tool_base_url=TOOL_BASE_URL, tool_public_key_pem=public_pem) as platform:
        # The consumer (Django, lti_consumer) is imported on the platform's first token
        # request: import it now, so the workers' first seconds are not the harness's.
        from tests.functional.platform import openedx  # noqa: F401

        platform.jwks()
        if args.platform_backlog:
            # The harness's ThreadingHTTPServer listens with socketserver's backlog of 5:
            # with 30 connections opened at once, the kernel drops some and the client
            # waits a second to retry. A real LMS (gunicorn, nginx) listens with 511 to
            # 2048; listen() again on the socket only resizes the queue.
            platform._server._httpd.socket.listen(args.platform_backlog)
        platform.faults.latency = args.latency
        platform.faults.failure_rate = args.failure_rate
        platform.faults.seed(args.seed)
        # Arrival time of every score POST (the harness records the POST, not its time).
        post_times: list[float] = []
        record = platform.gradebook.record_post
        times_lock = threading.Lock()

        def record_post(entry: dict[str, Any]) -> None:
            with times_lock:
                post_times.append(time.monotonic())
            record(entry)

        platform.gradebook.record_post = record_post  # type: ignore[method-assign]

        started = time.monotonic()
        fixture = write_fixture(url, platform, args.rows)
        print(
            f"database: {'PostgreSQL' if url.startswith('postgresql') else 'SQLite'} "
            f"({url.split('@')[-1]}); token cache: {'Redis' if redis_url else 'the database'}\n"
            f"{args.rows} pending rows written in {time.monotonic() - started:.1f} s; "
            f"platform on {platform.base_url}: latency {args.latency * 1000:.0f} ms on every "
            f"AGS request, {args.failure_rate:.0%} of score POSTs answered 503 (seed {args.seed})"
        )
        env = {k: v for k, v in os.environ.items() if k not in TOOL_VARIABLES}
        env.update(
            DATAIDE_ENV="production",
            BASE_URL=TOOL_BASE_URL,
            DATABASE_URL=url,
            SECRET_KEY=secrets["SECRET_KEY"],
            KEY_ENCRYPTION_KEY=kek,
            CONTENT_PATH=str(ROOT),
            INSTANCE_PATH=str(tmp / "instance"),
            GRADE_WORKER="off",
            GRADE_WORKER_CONCURRENCY=str(args.concurrency),
            LOG_LEVEL="INFO",
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        argv = [*(args.worker_command or [str(Path(sys.executable).parent / "lti-tool")]), "worker"]
        workers = Workers(tmp)
        try:
            print(
                f"starting {args.workers} x `lti-tool worker` "
                f"(GRADE_WORKER_CONCURRENCY={args.concurrency})",
                flush=True,
            )
            if args.quiet_wait and not procstats.wait_quiet(args.quiet_wait, 15.0):
                print(f"warning: the machine was still busy after {args.quiet_wait:g} s")
            before = procstats.Snapshot.take()
            overflows_before = listen_overflows()
            started = time.monotonic()
            workers.start(args.workers, argv, env)
            recorders = start_profiles(workers, tmp) if args.profile else []
            try:
                progress, finished = poll_until_terminal(
                    url, args.rows, workers, started, args.timeout, args.poll, args.quiet
                )
                total = time.monotonic() - started
                worker_cpu = workers.cpu_seconds()
                after = procstats.Snapshot.take()
                overflows = listen_overflows() - overflows_before
            finally:
                stop_profiles(recorders)
        finally:
            workers.stop()
        cpu = cpu_split(before, after)
        figures = check_platform(platform, fixture, post_times, started)
        rows = row_figures(url)
        table_stats = outbox_table_stats(url)
        outcomes = workers.outcomes()
    if args.profile:
        print_profiles(tmp, len(workers.procs))
    return report(
        args,
        url,
        total,
        finished,
        progress,
        rows,
        figures,
        outcomes,
        worker_cpu,
        cpu,
        overflows,
        table_stats,
    )


def report(
    args: argparse.Namespace,
    url: str,
    total: float,
    finished: bool,
    progress: Progress,
    rows: RowFigures,
    figures: PlatformFigures,
    outcomes: list[dict[str, int]],
    worker_cpu: list[float],
    cpu: dict[str, float],
    overflows: int,
    table_stats: dict[str, int],
) -> int:
    n = args.rows
    delivered = rows.states.get("delivered", 0)
    at_target = next(
        (c.get("delivered", 0) for t, c in reversed(progress.points) if t <= args.target),
        0,
    )

    def reached(share: float) -> str:
        t = progress.first_time(lambda c: c.get("delivered", 0) >= share * n)
        return f"{t:.1f} s" if t is not None else "-"

    retries = sum((t - 1) * k for t, k in rows.tries.items() if t > 1)
    injected_share = figures.injected / max(1, figures.posts)
    mismatches = f"{figures.missing} / {figures.unexpected} / {len(figures.wrong_scores)}"
    others = cpu["machine busy"] - sum(worker_cpu) - cpu["bench (platform)"] - cpu["db/redis"]
    lines = [
        ("rows delivered", f"{delivered} / {n}"),
        ("states", json.dumps(rows.states)),
        ("total time (workers started -> every row terminal)", f"{total:.1f} s"),
        ("  first POST received", f"{figures.first_post:.1f} s" if figures.first_post else "-"),
        ("  last POST received", f"{figures.last_post:.1f} s" if figures.last_post else "-"),
        (
            "  50 % / 90 % / 99 % / 99.9 % delivered at",
            " / ".join(reached(s) for s in (0.5, 0.9, 0.99, 0.999)),
        ),
        (f"  delivered at {args.target:g} s", f"{at_target} ({at_target / n:.1%})"),
        ("throughput (rows / total time)", f"{delivered / total:.0f} rows/s"),
        ("score POSTs received", str(figures.posts)),
        ("  by status", json.dumps(figures.by_status)),
        ("  injected failures (503)", f"{figures.injected} ({injected_share:.1%})"),
        ("  POSTs per 5 s since the start", figures.timeline),
        ("retries (tries beyond the first)", str(retries)),
        (
            "tries counted by the tool / POSTs received",
            f"{sum(t * k for t, k in rows.tries.items())} / {figures.posts} "
            "(a try with no POST: a transport error before the platform answered)",
        ),
        ("rows by tries", json.dumps(rows.tries)),
        ("platform: learners with a score", f"{figures.users_with_score} / {n}"),
        ("  missing / unexpected / wrong values", mismatches),
        ("  scores applied twice (at-least-once)", str(figures.duplicate_applied)),
        ("token requests / AGS requests", f"{figures.token_requests} / {figures.ags_requests}"),
        ("workers' own count (delivered...)", json.dumps(outcomes)),
        ("CPU: workers (each)", " / ".join(f"{c:.1f} s" for c in worker_cpu)),
        ("CPU: bench process (platform, polling)", f"{cpu['bench (platform)']:.1f} s"),
        ("CPU: PostgreSQL + Redis", f"{cpu['db/redis']:.1f} s"),
        (
            "CPU: everything else (other processes, kernel)",
            f"{others:.1f} s",
        ),
        (
            "CPU: machine busy",
            f"{cpu['machine busy'] / max(1e-9, cpu['machine total']):.0%} of "
            f"{os.cpu_count()} cores",
        ),
    ]
    width = max(len(k) for k, _ in lines)
    print()
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    print(f"{'why rows waited (status: error)':<{width}}  {json.dumps(progress.retry_reasons())}")
    if table_stats:
        print(
            f"{'PostgreSQL, grade_outbox table':<{width}}  {table_stats['idx_scan']:,} index "
            f"scans ({table_stats['idx_scan'] / max(1, figures.posts):,.0f} per score POST), "
            f"{table_stats['seq_scan']} sequential scans (mostly this bench's polls), "
            f"{table_stats['n_tup_upd']:,} row updates ({table_stats['n_tup_hot_upd']:,} HOT), "
            f"{table_stats['n_dead_tup']:,} dead rows, {table_stats['autovacuum_count']} "
            "autovacuums"
        )
    print(
        f"{'listen queue overflows (kernel)':<{width}}  {overflows} "
        "(connections the platform's accept queue dropped: the client waits ~1 s and retries)"
    )
    if figures.wrong_scores:
        print("wrong scores (first 5):\n  " + "\n  ".join(figures.wrong_scores[:5]))

    if others > FOREIGN_WARNING * cpu["machine total"]:
        print(
            f"\nWARNING: other processes (and the kernel) used {others:.0f} s of CPU, "
            f"{others / max(1e-9, cpu['machine total']):.0%} of the machine: the time is "
            "not the tool's alone; run again on a quiet machine"
        )
    problems = []
    if not finished:
        problems.append(f"not every row terminal after {args.timeout:g} s")
    if delivered != n:
        problems.append(f"{n - delivered} rows not delivered")
    if figures.missing or figures.unexpected or figures.wrong_scores:
        problems.append(
            f"platform: {figures.missing} missing, {figures.unexpected} unexpected, "
            f"{len(figures.wrong_scores)} wrong scores"
        )
    if total > args.target:
        problems.append(f"{total:.1f} s > {args.target:g} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "settings": {k: str(v) for k, v in vars(args).items()},
                    "database": url.split("@")[-1],
                    "total_seconds": total,
                    "finished": finished,
                    "rows": rows.__dict__,
                    "platform": figures.__dict__,
                    "outcomes": outcomes,
                    "worker_cpu": worker_cpu,
                    "cpu": cpu,
                    "outbox_table": table_stats,
                    "retry_reasons": progress.retry_reasons(),
                    "progress": progress.points,
                    "problems": problems,
                },
                indent=2,
                default=str,
            )
        )
        print(f"results: {args.json}")
    if problems:
        print(f"\nFAIL: {'; '.join(problems)}")
        return 1
    print(f"\nPASS: {n} scores delivered in {total:.1f} s (target < {args.target:g} s), none lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
