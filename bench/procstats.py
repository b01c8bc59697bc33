"""CPU time and peak memory of processes, read from Linux's /proc.

A round is bracketed by two :class:`Snapshot` of every process on the machine, so the
CPU it cost can be split between the server under test, the platform, the clients, the
database services and anything else that happened to run (another developer's tests):
the last one says whether the figures of a round can be trusted.
"""

from __future__ import annotations

import cProfile
import gc
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
KTHREADD = 2  # parent of every kernel thread


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    #: utime + stime of the process (all its threads), in clock ticks.
    ticks: int
    #: cutime + cstime: CPU of the children it has waited for, e.g. gunicorn workers
    #: recycled by max_requests, which would otherwise vanish from the count.
    reaped: int


def read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    name_end = raw.rindex(")")
    fields = raw[name_end + 2 :].split()
    # fields[0] is proc(5)'s field 3 (state): ppid is 4, utime..cstime are 14..17.
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        comm=raw[raw.index("(") + 1 : name_end],
        ticks=int(fields[11]) + int(fields[12]),
        reaped=int(fields[13]) + int(fields[14]),
    )


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list: a child may be forked by any)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(set(out))


@dataclass(frozen=True)
class Snapshot:
    procs: dict[int, Proc]
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls) -> Snapshot:
        procs = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                proc = read_proc(int(entry.name))
                if proc is not None:
                    procs[proc.pid] = proc
        return cls(procs, *cls.machine())

    @staticmethod
    def machine() -> tuple[float, float]:
        """Busy and total CPU seconds of the machine so far (all cores), from /proc/stat."""
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        values = [int(v) for v in first[1:]]
        # user nice system idle iowait irq softirq steal (guest time is already in user).
        idle = values[3] + values[4]
        total = sum(values[:8])
        return (total - idle) / TICKS_PER_SECOND, total / TICKS_PER_SECOND

    def tree(self, root: int) -> set[int]:
        """``root`` and its live descendants."""
        kids: dict[int, list[int]] = {}
        for proc in self.procs.values():
            kids.setdefault(proc.ppid, []).append(proc.pid)
        out, stack = set(), [root]
        while stack:
            pid = stack.pop()
            if pid in out or pid not in self.procs:
                continue
            out.add(pid)
            stack.extend(kids.get(pid, []))
        return out


def cpu_between(before: Snapshot, after: Snapshot, pids: Iterable[int], *, reaped: bool) -> float:
    """CPU seconds that ``pids`` (as found in ``after``) used between the snapshots;
    with ``reaped``, also that of their children that exited in between."""
    ticks = 0
    for pid in pids:
        now = after.procs.get(pid)
        if now is None:
            continue
        then = before.procs.get(pid)
        ticks += now.ticks - (then.ticks if then else 0)
        if reaped:
            ticks += now.reaped - (then.reaped if then else 0)
    return ticks / TICKS_PER_SECOND


def group_cpu_between(before: Snapshot, after: Snapshot, live: set[int], gone: set[int]) -> float:
    """CPU of a group of processes between the snapshots: ``live`` members (found in
    ``after``) and ``gone`` ones (in ``before`` only). A member that exited was reaped by
    its parent, whose cutime/cstime then holds all the CPU of its life: counting the
    parent's reaped time and taking off what the member had used before the first
    snapshot keeps the figure exact, e.g. when gunicorn recycles a worker mid-round."""
    ticks = 0
    for pid in live:
        now = after.procs[pid]
        then = before.procs.get(pid)
        ticks += now.ticks + now.reaped - (then.ticks + then.reaped if then else 0)
    for pid in gone:
        then = before.procs[pid]
        ticks -= then.ticks + then.reaped
    return ticks / TICKS_PER_SECOND


def tree_cpu_between(before: Snapshot, after: Snapshot, root: int) -> float:
    """CPU of ``root`` and its descendants between the snapshots."""
    live = after.tree(root)
    return group_cpu_between(before, after, live, before.tree(root) - live)


def kernel_threads(snapshot: Snapshot) -> set[int]:
    return {p.pid for p in snapshot.procs.values() if p.pid == KTHREADD or p.ppid == KTHREADD}


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmHWM, VmRSS...); 0 when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def wait_quiet(timeout: float, busy_pct: float = 10.0) -> bool:
    """Wait (at most ``timeout`` s) for two quiet half-seconds in a row on the machine, so
    that what is measured next has it to itself. False when it never got quiet."""
    deadline = time.monotonic() + timeout
    quiet = 0
    last = Snapshot.machine()
    while quiet < 2:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
        now = Snapshot.machine()
        busy, total = now[0] - last[0], now[1] - last[1]
        quiet = quiet + 1 if 100 * busy <= busy_pct * max(1e-9, total) else 0
        last = now
    return True


def profile_text(title: str, fn: Callable[[], Any], lines: int = 25) -> str:
    """cProfile of one call: the lti_tool functions by cumulative time, then every
    function by own time. Paths are shown relative to the project or site-packages."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.runcall(fn)
    out = [f"== profile: {title} =="]
    for sort, restrict, what in (
        ("cumulative", ["lti_tool", lines], "lti_tool functions by cumulative time"),
        ("tottime", [lines], "all functions by own time"),
    ):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(sort).print_stats(*restrict)
        text = buffer.getvalue()
        start = text.find("   ncalls")
        text = text[start:] if start >= 0 else text
        for prefix in sorted(
            {str(Path(__file__).resolve().parents[1]) + "/", *(p + "/" for p in sys.path if p)},
            key=len,
        )[::-1]:
            text = text.replace(prefix, "")
        out += [f"-- {what}", text.rstrip()]
    return "\n".join(out)
