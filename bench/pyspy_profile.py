"""Sampling profile of a gunicorn server during one load round, with py-spy.

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` to use ``--profile``.
It attaches to the running workers (root, or ptrace allowed), so the code profiled is the
code served, under the benchmark's own load. Two recordings, one round each:

* on-CPU: where the workers burn CPU (what ``server CPU per launch`` is made of);
* wall-clock (``--idle``): also the time a worker spends blocked inside a request, waiting
  for a database lock, PostgreSQL or Redis; what lowers throughput without using CPU.

Only samples inside a request count (gunicorn's ``SyncWorker.handle``): a worker waiting
for the next connection is not the tool's doing. Stacks are kept in py-spy's "raw" format
(collapsed stacks, one ``frame;frame;... count`` per line), which flamegraph.pl or inferno
turn into an SVG, and summarised here:

* by package: where the CPU goes (the innermost frame's package);
* lti_tool functions, inclusive: samples whose stack passes through the function;
* lti_tool functions, attributed: each sample charged to the innermost lti_tool frame of
  its stack, i.e. which line of the tool's own code asked for the work (library time
  included), the first thing to look at to decide what to change.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def find_py_spy(bin_dir: Path) -> str | None:
    local = bin_dir / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Recorder:
    """``py-spy record`` on a process and its children, stopped with SIGINT."""

    def __init__(self, py_spy: str, pid: int, output: Path, *, idle: bool, rate: int = 250) -> None:
        self.output = output
        self._log = output.with_suffix(".log").open("w")
        self._proc = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--rate",
                str(rate),
                "--nolineno",
                "--format",
                "raw",
                "--output",
                str(output),
                *(["--idle"] if idle else []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(1.5)  # attaching to every worker takes a moment
        if self._proc.poll() is not None:
            self._log.close()
            raise RuntimeError(f"py-spy exited: {output.with_suffix('.log').read_text()}")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._log.close()


def _package(file: str) -> str:
    if file.startswith("lti_tool/"):
        return "lti_tool (own code)"
    head = file.split("/", 1)[0]
    if head.endswith(".py") or head in ("", "<string>"):
        return "stdlib / main"
    return head


@dataclass(frozen=True)
class Summary:
    title: str
    #: Samples taken while a worker handled a request (the figures' 100%).
    samples: int
    #: Samples outside requests: the master, a worker waiting for a connection.
    outside: int
    by_package: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]
    attributed: list[tuple[str, int]]
    self_time: list[tuple[str, int]]

    def render(self, top: int = 15) -> str:
        def table(title: str, rows: list[tuple[str, int]]) -> list[str]:
            lines = [f"  {title}"]
            for name, count in rows[:top]:
                lines.append(f"    {100 * count / max(1, self.samples):5.1f}%  {name}")
            return lines

        out = [f"{self.title}: {self.samples} samples in requests ({self.outside} outside)"]
        out += table("by package (innermost frame)", self.by_package)
        out += table("lti_tool functions, attributed (innermost own frame)", self.attributed)
        out += table("lti_tool functions, inclusive", self.inclusive)
        out += table("hottest functions anywhere (self)", self.self_time)
        return "\n".join(out)


def summarise(raw: Path, title: str, request_frame: str = "SyncWorker.handle") -> Summary:
    """Summarise the stacks that pass through ``request_frame`` (gunicorn's sync worker
    handling one connection: parsing, the app, writing the response)."""
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    attributed: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = outside = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for frame in stack_text.split(";"):
            match = _FRAME.match(frame)
            if match:  # "process ..." and "thread ..." pseudo-frames have no file
                frames.append((match["func"], match["file"]))
        if not any(func == request_frame for func, _ in frames):
            outside += count
            continue
        total += count
        leaf_func, leaf_file = frames[-1]
        by_package[_package(leaf_file)] += count
        self_time[f"{leaf_func} ({leaf_file})"] += count
        own = [f"{f} ({p})" for f, p in frames if p.startswith("lti_tool/")]
        for name in set(own):
            inclusive[name] += count
        attributed[own[-1] if own else "(no lti_tool frame: gunicorn, werkzeug, flask)"] += count
    return Summary(
        title=title,
        samples=total,
        outside=outside,
        by_package=by_package.most_common(),
        inclusive=inclusive.most_common(),
        attributed=attributed.most_common(),
        self_time=self_time.most_common(),
    )
