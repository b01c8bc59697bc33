"""LTI 1.3 launch benchmark: the tool against a minimal Flask tool, same load, same machine.

``make bench-launch`` (or ``.venv/bin/python bench/launch.py --help``). What is measured
and how to read the output: ``bench/README.md``.

One run starts, all on 127.0.0.1 and in a temporary folder:

* the platform (``fake_platform.py``): OIDC authorization endpoint signing a fresh RS256
  id_token per launch in its own worker processes, and the JWKS;
* the tool, set up from nothing (``lti-tool setup``, ``lti-tool platform add``), under
  gunicorn with the project's settings file and 2 sync workers;
* the minimal tool (``minimal_tool.py``) under the same gunicorn settings;
* 16 load clients (``load.py``), which run the same launches on each target in turn:
  warm-up, then rounds tool, minimal, tool, minimal, tool, minimal.

It prints a table per round and a summary with the ratios tool / minimal, checks them
against the targets and exits 1 on a missed target or on any failed launch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # sibling modules, also when imported rather than run

import procstats  # noqa: E402
import pyspy_profile  # noqa: E402
from load import ClientPool, Population, RoundResult, Target  # noqa: E402

CLIENT_ID = "bench-client"
DEPLOYMENT_ID = "1"
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
RESULTS_DIR = HERE / "results"
# Share of the machine that processes foreign to the run may use before its figures are
# flagged: beyond it they compete with the servers for the two cores.
FOREIGN_WARNING_PCT = 5.0
# Variables the tool or gunicorn read: the bench sets its own, a developer's shell
# (or the Makefile's BASE_URL) must not leak into the servers.
TOOL_VARIABLES = (
    "DATAIDE_ENV",
    "BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "KEY_ENCRYPTION_KEY",
    "TRUSTED_PROXIES",
    "LTI_LEEWAY_SECONDS",
    "LAUNCH_TOKEN_SECONDS",
    "LOGIN_STATE_SECONDS",
    "HTTP_TIMEOUT_SECONDS",
    "HTTP_MAX_BYTES",
    "RATE_LIMIT_PER_MINUTE",
    "OPEN_REGISTRATION",
    "LOG_LEVEL",
    "INSTANCE_PATH",
    "WEB_CONCURRENCY",
    "GUNICORN_BIND",
    "GUNICORN_CMD_ARGS",
    "FLASK_APP",
)


@dataclass(frozen=True)
class Targets:
    """The issue's acceptance thresholds, tool / minimal."""

    min_throughput_ratio: float = 0.6
    max_cpu_ratio: float = 2.2
    max_p99_ratio: float = 1.8


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TOOL_VARIABLES}
    env.update(extra)
    return env


class Processes:
    """Every server process the run starts, each in its own session so that a Ctrl-C in
    the terminal reaches only this script, which then stops them in order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen[bytes], signal.Signals]] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], stop: signal.Signals
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            list(argv), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the child holds its own descriptor
        self._procs.append((name, proc, stop))
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, proc, _ in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def stop_all(self) -> None:
        for _, proc, sig in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
        deadline = time.monotonic() + 15
        for _, proc, _ in reversed(self._procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Whatever is left of the session (workers of a stuck master): kill it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()


def wait_http(url: str, ok: set[int], timeout: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status in ok:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s ({last})")


def wait_workers(master: int, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(procstats.children(master)) >= workers:
            return
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn {master} has not started {workers} workers")


def run_cli(argv: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


# -- PostgreSQL: a schema of its own for each run ----------------------------------------


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).split("?", 1)[0]


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema in the database of ``url`` (the database is created if missing),
    dropped at the end: the bench never touches tables it did not create."""
    import psycopg
    from psycopg import sql

    conninfo = _pg_conninfo(url)
    dbname = urlsplit(conninfo).path.lstrip("/") or "postgres"
    try:
        psycopg.connect(conninfo, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        admin = urlsplit(conninfo)._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    schema = f"lti_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


# -- measurement ----------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    master: int
    target: Target
    peak_kib: dict[int, int] = field(default_factory=dict)

    def workers(self) -> list[int]:
        return procstats.children(self.master)

    def sample_memory(self) -> None:
        """Remember each worker's VmHWM (a recycled worker's peak is kept too)."""
        for pid in self.workers():
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), procstats.status_kib(pid, "VmHWM"))


SERVICE_COMMANDS = ("postgres", "redis-server")


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds of a round, by who used them (all cores together)."""

    server: float  # the target's gunicorn master and workers
    platform: float  # the platform process and its signing processes
    clients: float
    services: float  # PostgreSQL and Redis server processes
    bench: float  # the idle other server and this script
    foreign: float  # every other process on the machine
    machine_busy: float
    machine_total: float

    @property
    def kernel(self) -> float:
        """Busy time no process was charged with: interrupts, loopback networking, and
        processes that started and ended within the round."""
        return self.machine_busy - (
            self.server + self.platform + self.clients + self.services + self.bench + self.foreign
        )

    def __add__(self, other: CpuSplit) -> CpuSplit:
        return CpuSplit(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @classmethod
    def zero(cls) -> CpuSplit:
        return cls(0, 0, 0, 0, 0, 0, 0, 0)

    @classmethod
    def between(
        cls,
        before: procstats.Snapshot,
        after: procstats.Snapshot,
        server: int,
        other_servers: Sequence[int],
        platform: int,
        clients: Sequence[int],
    ) -> CpuSplit:
        known: set[int] = set(clients) | {os.getpid()}
        trees = {}
        for root in (server, platform, *other_servers):
            trees[root] = procstats.tree_cpu_between(before, after, root)
            known |= before.tree(root) | after.tree(root)
        services = {p.pid for p in after.procs.values() if p.comm in SERVICE_COMMANDS}
        services_gone = {
            p.pid
            for p in before.procs.values()
            if p.comm in SERVICE_COMMANDS and p.pid not in after.procs
        }
        kernel = procstats.kernel_threads(after) | procstats.kernel_threads(before)
        foreign = set(after.procs) - known - services - kernel
        foreign_gone = set(before.procs) - set(after.procs) - known - services_gone - kernel
        return cls(
            server=trees[server],
            platform=trees[platform],
            clients=procstats.cpu_between(before, after, clients, reaped=False),
            services=procstats.group_cpu_between(before, after, services, services_gone),
            bench=sum(trees[r] for r in other_servers)
            + procstats.cpu_between(before, after, [os.getpid()], reaped=False),
            foreign=procstats.group_cpu_between(before, after, foreign, foreign_gone),
            machine_busy=after.machine_busy - before.machine_busy,
            machine_total=after.machine_total - before.machine_total,
        )


def busiest_others(
    before: procstats.Snapshot, after: procstats.Snapshot, ours: Sequence[int], top: int = 3
) -> list[str]:
    """The processes foreign to the run that used the most CPU between the snapshots
    (children they reaped included), to say what skewed a round."""
    exclude: set[int] = {os.getpid()} | procstats.kernel_threads(after)
    for root in ours:
        exclude |= after.tree(root)
    used = []
    for pid, now in after.procs.items():
        if pid in exclude or now.comm in SERVICE_COMMANDS:
            continue
        then = before.procs.get(pid)
        ticks = now.ticks + now.reaped - (then.ticks + then.reaped if then else 0)
        if ticks > 0:
            used.append((ticks, f"{now.comm} ({pid})"))
    used.sort(reverse=True)
    return [f"{name} {ticks / procstats.TICKS_PER_SECOND:.1f} s" for ticks, name in used[:top]]


@dataclass
class RoundStats:
    round: int
    target: str
    launches: int
    errors: int
    seconds: float
    cpu: CpuSplit
    latencies: list[float]
    platform_waits: list[float]
    error_samples: list[str]
    busiest_others: list[str]

    @property
    def throughput(self) -> float:
        return self.launches / self.seconds if self.seconds else 0.0


def measure_round(
    number: int,
    server: Server,
    others: Sequence[Server],
    launches: int,
    pool: ClientPool,
    platform_pid: int,
    timeout: float,
) -> RoundStats:
    before = procstats.Snapshot.take()
    results: list[RoundResult] = pool.run(server.target, launches, timeout)
    after = procstats.Snapshot.take()
    server.sample_memory()
    active = [r for r in results if r.latencies or r.errors]
    seconds = max(r.finished for r in active) - min(r.started for r in active) if active else 0.0
    return RoundStats(
        round=number,
        target=server.name,
        launches=sum(len(r.latencies) + r.errors for r in results),
        errors=sum(r.errors for r in results),
        seconds=seconds,
        cpu=CpuSplit.between(
            before, after, server.master, [o.master for o in others], platform_pid, pool.pids
        ),
        latencies=[x for r in results for x in r.latencies],
        platform_waits=[x for r in results for x in r.platform_waits],
        error_samples=[s for r in results for s in r.error_samples],
        busiest_others=busiest_others(
            before, after, [server.master, platform_pid, *(o.master for o in others), *pool.pids]
        ),
    )


@dataclass
class TargetSummary:
    name: str
    launches: int
    errors: int
    throughput: float
    p50_ms: float
    p99_ms: float
    platform_p50_ms: float
    cpu_ms: float
    #: Machine CPU per launch, by who used it (ms).
    split_ms: dict[str, float]
    machine_busy_pct: float
    foreign_pct: float
    peak_worker_mib: float
    workers_seen: int

    @classmethod
    def of(cls, name: str, rounds: list[RoundStats], server: Server) -> TargetSummary:
        mine = [r for r in rounds if r.target == name]
        launches = sum(r.launches for r in mine)
        seconds = sum(r.seconds for r in mine)
        latencies = [x for r in mine for x in r.latencies]
        cpu = sum((r.cpu for r in mine), CpuSplit.zero())
        per = 1000 / max(1, launches)
        return cls(
            name=name,
            launches=launches,
            errors=sum(r.errors for r in mine),
            throughput=launches / seconds if seconds else 0.0,
            p50_ms=1000 * procstats.percentile(latencies, 0.50),
            p99_ms=1000 * procstats.percentile(latencies, 0.99),
            platform_p50_ms=1000
            * procstats.percentile([x for r in mine for x in r.platform_waits], 0.5),
            cpu_ms=cpu.server * per,
            split_ms={
                "server": cpu.server * per,
                "platform": cpu.platform * per,
                "clients": cpu.clients * per,
                "db/redis": cpu.services * per,
                "bench": cpu.bench * per,
                "others": cpu.foreign * per,
                "kernel": cpu.kernel * per,
            },
            machine_busy_pct=100 * cpu.machine_busy / max(1e-9, cpu.machine_total),
            foreign_pct=100 * cpu.foreign / max(1e-9, cpu.machine_total),
            peak_worker_mib=max(server.peak_kib.values(), default=0) / 1024,
            workers_seen=len(server.peak_kib),
        )


# -- report ---------------------------------------------------------------------------


def render_rounds(rounds: list[RoundStats]) -> str:
    head = (
        f"{'round':>5}  {'target':<8} {'launches':>8} {'seconds':>7} {'launch/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'CPU ms/launch':>13} {'platform p50':>12} "
        f"{'busy':>5} {'others':>6} {'errors':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rounds:
        total = max(1e-9, r.cpu.machine_total)
        lines.append(
            f"{r.round:>5}  {r.target:<8} {r.launches:>8} {r.seconds:>7.2f} {r.throughput:>8.1f} "
            f"{1000 * procstats.percentile(r.latencies, 0.5):>7.1f} "
            f"{1000 * procstats.percentile(r.latencies, 0.99):>7.1f} "
            f"{1000 * r.cpu.server / max(1, r.launches):>13.2f} "
            f"{1000 * procstats.percentile(r.platform_waits, 0.5):>9.1f} ms "
            f"{100 * r.cpu.machine_busy / total:>4.0f}% {100 * r.cpu.foreign / total:>5.0f}% "
            f"{r.errors:>6}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    label: str
    tool: float
    minimal: float
    fmt: str
    target: str  # human-readable threshold, "" when informative only
    passed: bool | None

    @property
    def ratio(self) -> float:
        return self.tool / self.minimal if self.minimal else float("inf")


def checks(tool: TargetSummary, minimal: TargetSummary, targets: Targets) -> list[Check]:
    throughput_ratio = tool.throughput / minimal.throughput if minimal.throughput else 0.0
    cpu_ratio = tool.cpu_ms / minimal.cpu_ms if minimal.cpu_ms else float("inf")
    p99_ratio = tool.p99_ms / minimal.p99_ms if minimal.p99_ms else float("inf")
    return [
        Check(
            "launches per second",
            tool.throughput,
            minimal.throughput,
            ".1f",
            f">= {targets.min_throughput_ratio:.2f}",
            throughput_ratio >= targets.min_throughput_ratio,
        ),
        Check("p50 latency (ms)", tool.p50_ms, minimal.p50_ms, ".1f", "", None),
        Check(
            "p99 latency (ms)",
            tool.p99_ms,
            minimal.p99_ms,
            ".1f",
            f"<= {targets.max_p99_ratio:.2f}",
            p99_ratio <= targets.max_p99_ratio,
        ),
        Check(
            "server CPU per launch (ms)",
            tool.cpu_ms,
            minimal.cpu_ms,
            ".2f",
            f"<= {targets.max_cpu_ratio:.2f}",
            cpu_ratio <= targets.max_cpu_ratio,
        ),
        Check(
            "peak memory per worker (MiB)",
            tool.peak_worker_mib,
            minimal.peak_worker_mib,
            ".1f",
            "",
            None,
        ),
        Check(
            "failed launches",
            tool.errors,
            minimal.errors,
            ".0f",
            "none",
            tool.errors == 0 and minimal.errors == 0,
        ),
    ]


def render_summary(tool: TargetSummary, minimal: TargetSummary, table: list[Check]) -> str:
    head = f"{'':<30} {'tool':>10} {'minimal':>10} {'ratio':>7}  {'target':<9} result"
    lines = [head, "-" * len(head)]
    for c in table:
        ratio = "" if c.label == "failed launches" else f"{c.ratio:.2f}"
        verdict = "" if c.passed is None else ("PASS" if c.passed else "FAIL")
        lines.append(
            f"{c.label:<30} {c.tool:>10{c.fmt}} {c.minimal:>10{c.fmt}} {ratio:>7}  "
            f"{c.target or '(info)':<9} {verdict}"
        )
    columns = list(tool.split_ms)
    lines += [
        "",
        "CPU of the whole machine per launch (ms), by who used it:",
        f"{'':<10}" + "".join(f"{c:>10}" for c in columns) + f"{'busy':>7}",
    ]
    for s in (tool, minimal):
        lines.append(
            f"{s.name:<10}"
            + "".join(f"{s.split_ms[c]:>10.2f}" for c in columns)
            + f"{s.machine_busy_pct:>6.0f}%"
        )
    return "\n".join(lines)


# -- the run --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="LTI 1.3 launch benchmark: the tool against a minimal Flask tool.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--launches", type=int, default=600, help="launches per round and target")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each: tool, then minimal)")
    parser.add_argument("--warmup", type=int, default=150, help="unmeasured launches per target")
    parser.add_argument("--clients", type=int, default=16, help="concurrent load clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    parser.add_argument("--signers", type=int, default=2, help="platform signing processes")
    parser.add_argument("--users", type=int, default=500, help="distinct people launching")
    parser.add_argument("--courses", type=int, default=20, help="courses they are enrolled in")
    parser.add_argument(
        "--database-url",
        default="",
        help="tool database URL; empty: a SQLite file in the run's temporary folder. "
        "PostgreSQL: the database is created if missing, and a schema of its own is "
        "created for the run and dropped at the end",
    )
    parser.add_argument(
        "--redis",
        default="",
        help="Redis URL for the tool's store and the minimal tool's states; empty: the "
        "tool's database is its store, and the minimal tool uses the same kind of database",
    )
    parser.add_argument(
        "--reruns",
        type=int,
        default=3,
        help="times a round is run again when other processes used more than "
        f"{FOREIGN_WARNING_PCT:.0f}%% of the machine during it",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="seconds to wait, before each round, for the machine to be idle",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of who launches where")
    parser.add_argument(
        "--round-timeout", type=float, default=300, help="seconds before a round is abandoned"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measured rounds, run two more tool rounds under py-spy (on-CPU, "
        "then wall-clock) and print the hottest lti_tool functions (needs py-spy)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="results file; none: bench/results/launch-*.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args(argv)
    if min(args.launches, args.rounds, args.clients, args.workers, args.signers) < 1:
        parser.error("--launches, --rounds, --clients, --workers and --signers must be >= 1")
    if args.users < 1 or args.courses < 1 or min(args.warmup, args.reruns, args.quiet_wait) < 0:
        parser.error("--users and --courses must be >= 1; --warmup, --reruns, --quiet-wait >= 0")
    return args


def tool_revision() -> str:
    """The commit the tool runs from, and whether lti_tool has uncommitted changes: figures
    only mean something next to the code they measured."""
    try:
        head = run_git("rev-parse", "--short", "HEAD")
        dirty = run_git("status", "--porcelain", "--", "lti_tool")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return head + (" + uncommitted changes in lti_tool" if dirty else "")


def run_git(*argv: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def describe_store(args: argparse.Namespace) -> tuple[str, str]:
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    if args.redis:
        return f"{database} database, Redis store", "Redis (SET EX / GETDEL)"
    if database == "PostgreSQL":
        return "PostgreSQL database and store", "PostgreSQL table"
    return "SQLite database and store (the embedded default)", "SQLite file, WAL"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bin_dir = Path(sys.executable).parent
    py_spy = pyspy_profile.find_py_spy(bin_dir) if args.profile else None
    if args.profile and py_spy is None:
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="lti-bench-"))
    procs = Processes(tmp)

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Also when started where SIGINT is ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.ExitStack() as cleanup:
        # Runs last (callbacks run in reverse), and reads args.keep then: an aborted run
        # keeps its logs.
        cleanup.callback(lambda: None if args.keep else shutil.rmtree(tmp, ignore_errors=True))
        try:
            schema = ""
            database_url = args.database_url
            if database_url.startswith("postgresql"):
                schema = cleanup.enter_context(postgres_schema(database_url))
                database_url = with_search_path(database_url, schema)
            # Registered before the servers start, so it runs first: the schema is dropped
            # only once every connection to it is closed.
            cleanup.callback(procs.stop_all)
            return run(args, tmp, procs, database_url, schema, bin_dir, py_spy, cleanup)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping every process", file=sys.stderr)
            return 130
        except Exception as exc:  # any failure of the bench itself (not of the tool): exit 2
            print(f"\nbenchmark aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(f"server logs: {tmp} (kept)", file=sys.stderr)
            args.keep = True
            return 2


def run(
    args: argparse.Namespace,
    tmp: Path,
    procs: Processes,
    database_url: str,
    schema: str,
    bin_dir: Path,
    py_spy: str | None,
    cleanup: contextlib.ExitStack,
) -> int:
    platform_port, tool_port, minimal_port = free_port(), free_port(), free_port()
    platform_url = f"http://127.0.0.1:{platform_port}"
    tool_url = f"http://127.0.0.1:{tool_port}"
    minimal_url = f"http://127.0.0.1:{minimal_port}"
    tool_store, minimal_store = describe_store(args)
    revision = tool_revision()
    print(
        f"LTI launch benchmark: {args.rounds} rounds x {args.launches} launches per target, "
        f"{args.clients} clients, {args.workers} sync workers per server, "
        f"{os.cpu_count()} cores\n"
        f"tool at {revision}: {tool_store}; minimal tool: {minimal_store}\n"
        f"people: {args.users} in {args.courses} courses; run folder: {tmp}",
        flush=True,
    )

    # Platform.
    platform = procs.start(
        "platform",
        [
            sys.executable,
            str(HERE / "fake_platform.py"),
            "--port",
            str(platform_port),
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            tool_url + "/lti/launch",
            "--redirect-uri",
            minimal_url + "/lti/launch",
            "--signers",
            str(args.signers),
        ],
        clean_env(),
        signal.SIGTERM,
    )
    wait_http(platform_url + "/jwks", {200}, 60, procs)

    # The tool, set up from nothing.
    tool_env = clean_env(
        INSTANCE_PATH=str(tmp / "instance"),
        BASE_URL=tool_url,
        LOG_LEVEL="WARNING",
        # Still counted on every login (one store write), but never reached: all clients
        # share one IP and the default (120 a minute) would refuse most launches.
        RATE_LIMIT_PER_MINUTE="100000",
    )
    if database_url:
        tool_env["DATABASE_URL"] = database_url
    if args.redis:
        tool_env["REDIS_URL"] = args.redis
    run_cli([str(bin_dir / "lti-tool"), "setup"], tool_env)
    run_cli(
        [
            str(bin_dir / "lti-tool"),
            "platform",
            "add",
            "--issuer",
            platform_url,
            "--client-id",
            CLIENT_ID,
            "--auth-login-url",
            platform_url + "/auth",
            "--auth-token-url",
            platform_url + "/token",
            "--key-set-url",
            platform_url + "/jwks",
            "--deployment-id",
            DEPLOYMENT_ID,
        ],
        tool_env,
    )

    # The minimal tool's store, created before its workers start so they never race
    # to create it.
    if args.redis:
        minimal_store_url = args.redis
    elif database_url.startswith("postgresql"):
        minimal_store_url = args.database_url
    else:
        minimal_store_url = f"sqlite:///{tmp / 'minimal.sqlite3'}"
    import minimal_tool

    minimal_tool.open_store(minimal_store_url, schema)
    minimal_env = clean_env(
        BENCH_BASE_URL=minimal_url,
        BENCH_ISSUER=platform_url,
        BENCH_CLIENT_ID=CLIENT_ID,
        BENCH_AUTH_LOGIN_URL=platform_url + "/auth",
        BENCH_KEY_SET_URL=platform_url + "/jwks",
        BENCH_STORE_URL=minimal_store_url,
        BENCH_PG_SCHEMA=schema,
    )

    def gunicorn(port: int, app: str, *extra: str) -> list[str]:
        # The project's settings file for both; the access log is formatted but goes to
        # /dev/null, the same cost on both sides.
        return [
            str(bin_dir / "gunicorn"),
            "-c",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--access-logfile",
            "/dev/null",
            *extra,
            app,
        ]

    tool_proc = procs.start(
        "tool", gunicorn(tool_port, "lti_tool:create_app()"), tool_env, signal.SIGINT
    )
    minimal_proc = procs.start(
        "minimal",
        gunicorn(minimal_port, "minimal_tool:create_app()", "--pythonpath", str(HERE)),
        minimal_env,
        signal.SIGINT,
    )
    wait_http(tool_url + "/healthz", {200}, 60, procs)
    wait_http(minimal_url + "/lti/login", {400}, 60, procs)
    wait_workers(tool_proc.pid, args.workers, 30)
    wait_workers(minimal_proc.pid, args.workers, 30)

    population = Population(
        issuer=platform_url,
        client_id=CLIENT_ID,
        platform_port=platform_port,
        users=args.users,
        courses=args.courses,
    )
    servers = {
        "tool": Server(
            "tool", tool_port, tool_proc.pid, Target("tool", tool_port, b"launch_token")
        ),
        "minimal": Server(
            "minimal",
            minimal_port,
            minimal_proc.pid,
            Target("minimal", minimal_port, b"minimal-launch-ok"),
        ),
    }
    pool = ClientPool(args.clients, population, args.seed)
    cleanup.callback(pool.close)

    warmup_errors: list[str] = []
    if args.warmup:
        for server in servers.values():
            for r in pool.run(server.target, args.warmup, args.round_timeout):
                warmup_errors += r.error_samples[: max(0, 5 - len(warmup_errors))]
                if r.errors and not r.error_samples:
                    warmup_errors.append(f"{server.name}: {r.errors} errors")
        procs.check_alive()
        print(f"warm-up: {args.warmup} launches per target, {len(warmup_errors)} errors")

    rounds: list[RoundStats] = []
    for number in range(1, args.rounds + 1):
        for server in servers.values():
            others = [o for o in servers.values() if o is not server]
            for attempt in range(1, args.reruns + 2):
                procstats.wait_quiet(args.quiet_wait)
                stats = measure_round(
                    number, server, others, args.launches, pool, platform.pid, args.round_timeout
                )
                procs.check_alive()
                foreign = 100 * stats.cpu.foreign / max(1e-9, stats.cpu.machine_total)
                print(
                    f"round {number} {server.name:<8} {stats.throughput:7.1f} launches/s, "
                    f"{stats.errors} errors, other processes {foreign:.0f}% of the machine",
                    flush=True,
                )
                if foreign <= FOREIGN_WARNING_PCT or attempt > args.reruns:
                    break
                print(
                    f"  round {number} {server.name}: skewed by other processes "
                    f"({', '.join(stats.busiest_others)}), run again"
                )
            rounds.append(stats)

    profile_text = ""
    if py_spy is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        RESULTS_DIR.mkdir(exist_ok=True)
        texts = []
        for idle, title in ((False, "on-CPU profile"), (True, "wall-clock profile")):
            raw = RESULTS_DIR / f"tool-{'wall' if idle else 'cpu'}-{stamp}.raw"
            procstats.wait_quiet(args.quiet_wait)
            recorder = pyspy_profile.Recorder(py_spy, tool_proc.pid, raw, idle=idle)
            try:
                pool.run(servers["tool"].target, args.launches, args.round_timeout)
            finally:
                recorder.stop()
            texts.append(pyspy_profile.summarise(raw, f"tool, {title}").render())
            texts.append(f"  collapsed stacks (flamegraph.pl / inferno input): {raw}")
        profile_text = "\n".join(texts)

    tool = TargetSummary.of("tool", rounds, servers["tool"])
    minimal = TargetSummary.of("minimal", rounds, servers["minimal"])
    table = checks(tool, minimal, Targets())
    samples = warmup_errors + [s for r in rounds for s in r.error_samples]

    print()
    print(render_rounds(rounds))
    print()
    print(render_summary(tool, minimal, table))
    busiest = max(tool.foreign_pct, minimal.foreign_pct)
    if busiest > FOREIGN_WARNING_PCT:
        print(
            f"\nWARNING: other processes on this machine used up to {busiest:.0f}% of its CPU "
            "during the rounds (column 'others'): the figures are skewed; rerun when it is idle."
        )
    if samples:
        print("\nfirst errors:")
        for sample in samples[:10]:
            print(f"  {sample}")
    if profile_text:
        print()
        print(profile_text)

    failed = [c.label for c in table if c.passed is False]
    if warmup_errors:
        failed.append("failed launches during warm-up")
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "tool_revision": revision,
        "tool_store": tool_store,
        "minimal_store": minimal_store,
        "rounds": [
            {k: v for k, v in asdict(r).items() if k not in ("latencies", "platform_waits")}
            | {
                "throughput": r.throughput,
                "p50_ms": 1000 * procstats.percentile(r.latencies, 0.5),
                "p99_ms": 1000 * procstats.percentile(r.latencies, 0.99),
            }
            for r in rounds
        ],
        "summary": {"tool": asdict(tool), "minimal": asdict(minimal)},
        "checks": [asdict(c) | {"ratio": c.ratio} for c in table],
        "failed": failed,
    }
    path = args.json or RESULTS_DIR / f"launch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {path}")
    if failed:
        print(f"FAIL: {', '.join(failed)}")
        return 1
    print("PASS: every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
