"""Load clients: processes that each run one simulated user's launches, one after another.

A launch is the browser's part of the LTI 1.3 flow:

1. ``GET /lti/login`` on the target: expect a 302 to the platform and the state cookie;
2. ``GET`` that redirect on the platform, which answers with a freshly signed id_token;
3. ``POST /lti/launch`` with ``id_token`` and ``state`` and the cookie sent back by hand
   (the cookie is ``Secure``, and HTTP clients keep those off plain http).

The latency of a launch is the time of requests 1 and 3 only: the platform's signing
is not the tool's doing.

Clients are processes, not threads, so that one client's bookkeeping never holds another
client's clock (the GIL) and latencies stay honest. Each uses ``http.client``: nothing
lighter sends a request from Python, which matters when clients share the two cores with
the servers. Connections to the target are new for every request (gunicorn's sync
workers close them); the platform connection is kept alive.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing as mp
import random
import signal
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

REQUEST_TIMEOUT = 30.0
MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True)
class Target:
    """A server under test, as the clients see it."""

    name: str
    port: int
    #: Bytes the launch page must contain.
    marker: bytes


@dataclass(frozen=True)
class Population:
    """Who launches from where: users are each enrolled in one course."""

    issuer: str
    client_id: str
    platform_port: int
    users: int = 500
    courses: int = 20
    links_per_course: int = 5

    def login_hint(self, rng: random.Random) -> str:
        user = rng.randrange(self.users)
        return f"u{user}-c{user % self.courses}-l{rng.randrange(self.links_per_course)}"


@dataclass
class RoundResult:
    """What one client measured during one round."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    #: Time the platform took to answer, for the record: it is not in the latency.
    platform_waits: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)


class LaunchError(Exception):
    pass


class Client:
    """One simulated browser; ``platform`` is its kept-alive connection to the platform."""

    def __init__(self, population: Population) -> None:
        self.population = population
        self.platform = http.client.HTTPConnection(
            "127.0.0.1", population.platform_port, timeout=REQUEST_TIMEOUT
        )

    def _target_request(
        self, target: Target, method: str, path: str, body: str | None, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes, float]:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
        finally:
            conn.close()
        return response.status, response.headers, content, time.perf_counter() - started

    def _id_token(self, location: str) -> str:
        parts = urlsplit(location)
        try:
            self.platform.request("GET", parts.path + "?" + parts.query)
            response = self.platform.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            # A kept-alive connection may have been dropped; one fresh attempt.
            self.platform.close()
            self.platform.request("GET", parts.path + "?" + parts.query)
            response = self.platform.getresponse()
            content = response.read()
        if response.status != 200:
            raise LaunchError(f"platform /auth: HTTP {response.status} {content[:200]!r}")
        return str(json.loads(content)["id_token"])

    def launch(self, target: Target, login_hint: str) -> tuple[float, float]:
        """One launch; returns the latency of the two target requests and the time the
        platform took, in seconds."""
        pop = self.population
        base = f"http://127.0.0.1:{target.port}"
        query = urlencode(
            {
                "iss": pop.issuer,
                "login_hint": login_hint,
                "target_link_uri": base + "/lti/launch",
                "client_id": pop.client_id,
                "lti_deployment_id": "1",
            }
        )
        status, headers, content, login_time = self._target_request(
            target, "GET", "/lti/login?" + query, None, {}
        )
        if status != 302:
            raise LaunchError(f"login: HTTP {status} {content[:200]!r}")
        location = headers.get("Location", "")
        if not location.startswith(f"http://127.0.0.1:{pop.platform_port}/auth?"):
            raise LaunchError(f"login: redirect to {location!r}")
        state = parse_qs(urlsplit(location).query).get("state", [""])[0]
        cookie = next(
            (
                c.split(";", 1)[0]
                for c in headers.get_all("Set-Cookie") or []
                if c.startswith(f"lti1p3-{state}=")
            ),
            None,
        )
        if not state or cookie != f"lti1p3-{state}={state}":
            raise LaunchError(f"login: no state cookie for state {state!r}")
        platform_started = time.perf_counter()
        id_token = self._id_token(location)
        platform_wait = time.perf_counter() - platform_started
        status, _, content, launch_time = self._target_request(
            target,
            "POST",
            "/lti/launch",
            urlencode({"id_token": id_token, "state": state}),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        if status != 200 or target.marker not in content:
            raise LaunchError(f"launch: HTTP {status} {content[:200]!r}")
        return login_time + launch_time, platform_wait


def run_round(
    client: Client,
    target: Target,
    counter: Synchronized[int],
    limit: int,
    rng: random.Random,
) -> RoundResult:
    """Launch until the shared counter reaches ``limit`` (claiming one launch at a time
    keeps all clients busy to the end of the round)."""
    result = RoundResult(started=time.perf_counter())
    while True:
        with counter.get_lock():
            if counter.value >= limit:
                break
            counter.value += 1
        try:
            latency, platform_wait = client.launch(target, client.population.login_hint(rng))
        except (LaunchError, OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            result.error(f"{target.name}: {type(exc).__name__}: {exc}")
        else:
            result.latencies.append(latency)
            result.platform_waits.append(platform_wait)
    result.finished = time.perf_counter()
    return result


def client_main(
    index: int, population: Population, counter: Synchronized[int], pipe: Connection, seed: int
) -> None:
    """Body of a client process: run the rounds the parent sends until told to stop."""
    # Ctrl-C reaches the whole process group; the parent decides when clients stop, and
    # ends a stuck one with SIGTERM, which must not run the parent's handler inherited
    # through fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    client = Client(population)
    rng = random.Random(seed * 1000 + index)
    while True:
        command: Any = pipe.recv()
        if command is None:
            break
        target, limit = command
        pipe.send(run_round(client, target, counter, limit, rng))
    client.platform.close()


class ClientPool:
    """``size`` client processes that run rounds on command."""

    def __init__(self, size: int, population: Population, seed: int) -> None:
        # fork: the clients need nothing the parent would have to pickle, and start fast.
        self._ctx = mp.get_context("fork")
        self.counter: Synchronized[int] = self._ctx.Value("l", 0)
        self._pipes: list[Connection] = []
        self.processes: list[Any] = []
        for i in range(size):
            parent_end, child_end = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=client_main,
                args=(i, population, self.counter, child_end, seed),
                name=f"bench-client-{i}",
                daemon=True,
            )
            proc.start()
            child_end.close()
            self._pipes.append(parent_end)
            self.processes.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def run(self, target: Target, launches: int, timeout: float) -> list[RoundResult]:
        """Run one round of ``launches`` launches on every client; wait at most ``timeout``."""
        with self.counter.get_lock():
            self.counter.value = 0
        for pipe in self._pipes:
            pipe.send((target, launches))
        deadline = time.monotonic() + timeout
        results: list[RoundResult] = []
        for pipe in self._pipes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not pipe.poll(remaining):
                raise TimeoutError(f"round on {target.name} exceeded {timeout:.0f} s")
            results.append(pipe.recv())
        return results

    def close(self) -> None:
        # A round cut short (Ctrl-C) ends after each client's current launch.
        with self.counter.get_lock():
            self.counter.value = 2**62
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self.processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
