"""Replay across processes: two gunicorn instances on two ports share PostgreSQL and Redis.

The exact (state, id_token) POST accepted by one instance is refused by the other, and of two
identical POSTs racing to both instances exactly one wins. A login made on one instance is
launched on the other (the login state lives in Redis, not in a process).

The tool runs as in production: ``lti-tool setup`` then ``gunicorn -c config/gunicorn.conf.py``
with two workers per instance, spoken to over real HTTP. The state cookie is ``Secure`` and
the servers are plain http on loopback, so this client sends it back by hand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from lti_tool.settings import generate_secrets
from lti_tool.store import RedisStore
from tests.conftest import postgres_url, redis_url, reset_postgres
from tests.functional.platform import LaunchUser, Platform

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 15.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def page_code(html: str) -> str | None:
    if "<code>" not in html:
        return None
    return html.split("<code>", 1)[1].split("</code>", 1)[0]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        err = self.stderr.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} ({self.url}) stderr ---\n{err[-6000:]}"


def run_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "lti-tool"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"lti-tool {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def add_platform_with_cli(env: dict[str, str], platform: Platform) -> None:
    """Register ``platform`` as an administrator would: ``lti-tool platform add``."""
    run_cli(
        env,
        "platform",
        "add",
        "--issuer",
        platform.issuer,
        "--client-id",
        platform.client_id,
        "--auth-login-url",
        platform.auth_login_url,
        "--auth-token-url",
        platform.auth_token_url,
        "--key-set-url",
        platform.keyset_url,
        "--deployment-id",
        "1",
    )


def start_gunicorn(name: str, port: int, env: dict[str, str], logs: Path) -> Server:
    stdout, stderr = logs / f"{name}.out.log", logs / f"{name}.err.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-c",
                "config/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "lti_tool:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: teardown kills master and workers
        )
    return Server(name, f"http://127.0.0.1:{port}", process, stdout, stderr)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"gunicorn {server.name} exited with {server.process.returncode} before "
                f"/readyz answered\n{server.logs()}",
                pytrace=False,
            )
        try:
            response = requests.get(f"{server.url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    pytest.fail(
        f"gunicorn {server.name} not ready after {READY_TIMEOUT_S:.0f}s (last: {last})\n"
        f"{server.logs()}",
        pytrace=False,
    )


def stop(server: Server) -> None:
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


@dataclass
class Cluster:
    a: Server
    b: Server
    platform: Platform

    def login(self, server: Server, user: LaunchUser) -> tuple[dict[str, str], str]:
        """GET /lti/login on ``server``; return (auth request params, state Cookie header)."""
        response = requests.get(
            f"{server.url}/lti/login",
            params=self.platform.login_params(user),
            allow_redirects=False,
            timeout=HTTP_TIMEOUT_S,
        )
        assert response.status_code == 302, self.failure(response, server)
        location = response.headers["Location"]
        assert location.startswith(self.platform.auth_login_url + "?"), location
        auth = dict(parse_qsl(urlsplit(location).query))
        cookie_name = f"lti1p3-{auth['state']}"
        set_cookies = response.raw.headers.getlist("Set-Cookie")
        pairs = [c.split(";", 1)[0] for c in set_cookies if c.startswith(cookie_name + "=")]
        assert len(pairs) == 1, f"no single {cookie_name} cookie in {set_cookies}"
        return auth, pairs[0]

    def launch_body(self, auth: dict[str, str]) -> bytes:
        """The platform's form_post answer to the auth request, as the exact bytes to POST."""
        return urlencode(self.platform.id_token_for(auth)).encode("ascii")

    def post_launch(self, server: Server, body: bytes, cookie: str) -> requests.Response:
        return requests.post(
            f"{server.url}/lti/launch",
            data=body,
            headers={**FORM, "Cookie": cookie},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT_S,
        )

    def failure(self, response: requests.Response, server: Server) -> str:
        return (
            f"{response.request.method} {response.url} -> {response.status_code}\n"
            f"{response.text[:2000]}\n{self.a.logs()}\n{self.b.logs()}"
        )


def assert_accepted(cluster: Cluster, response: requests.Response, server: Server) -> None:
    assert response.status_code == 200, cluster.failure(response, server)
    assert 'name="launch_token"' in response.text, cluster.failure(response, server)


def assert_replayed(cluster: Cluster, response: requests.Response, server: Server) -> None:
    assert response.status_code == 409, cluster.failure(response, server)
    assert page_code(response.text) == "launch_replayed", cluster.failure(response, server)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    pg, rd = postgres_url(), redis_url()
    reset_postgres(pg)
    RedisStore(rd).flush_prefix()
    port_a, port_b = free_port(), free_port()
    while port_b == port_a:
        port_b = free_port()
    base_url = f"http://127.0.0.1:{port_a}"
    env = {
        **os.environ,
        **generate_secrets(),
        "DATAIDE_ENV": "testing",
        "BASE_URL": base_url,
        "DATABASE_URL": pg,
        "REDIS_URL": rd,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("GUNICORN_BIND", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "FLASK_APP"):
        env.pop(name, None)
    logs = tmp_path / "logs"
    logs.mkdir()
    run_cli(env, "setup")
    with Platform(tool_base_url=base_url) as platform:
        add_platform_with_cli(env, platform)
        servers: list[Server] = []
        try:
            for name, port in (("A", port_a), ("B", port_b)):
                servers.append(start_gunicorn(name, port, env, logs))
            for server in servers:
                wait_ready(server)
            yield Cluster(servers[0], servers[1], platform)
        finally:
            for server in servers:
                stop(server)


def test_launch_accepted_by_one_instance_is_refused_by_the_other(cluster: Cluster) -> None:
    auth, cookie = cluster.login(cluster.a, LaunchUser.learner("replay-learner"))
    body = cluster.launch_body(auth)

    assert_accepted(cluster, cluster.post_launch(cluster.a, body, cookie), cluster.a)
    assert_replayed(cluster, cluster.post_launch(cluster.b, body, cookie), cluster.b)
    # And back on the instance that accepted it.
    assert_replayed(cluster, cluster.post_launch(cluster.a, body, cookie), cluster.a)


def race(cluster: Cluster, body: bytes, cookie: str) -> dict[str, requests.Response]:
    """POST the same body and cookie to A and B at the same moment; answers by server name."""
    barrier = Barrier(2)

    def post(server: Server) -> requests.Response:
        barrier.wait(timeout=10)
        return cluster.post_launch(server, body, cookie)

    servers = (cluster.a, cluster.b)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {server.name: pool.submit(post, server) for server in servers}
        return {name: done.result(timeout=HTTP_TIMEOUT_S + 10) for name, done in futures.items()}


def test_identical_posts_racing_to_both_instances_one_wins(cluster: Cluster) -> None:
    for round_number in range(3):
        auth, cookie = cluster.login(cluster.a, LaunchUser.learner(f"racer-{round_number}"))
        responses = race(cluster, cluster.launch_body(auth), cookie)
        details = ", ".join(
            f"{name}: {r.status_code} code={page_code(r.text)}" for name, r in responses.items()
        )
        statuses = sorted(r.status_code for r in responses.values())
        assert statuses == [200, 409], f"round {round_number}: {details}"
        for name, response in responses.items():
            server = cluster.a if name == "A" else cluster.b
            if response.status_code == 200:
                assert_accepted(cluster, response, server)
            else:
                assert_replayed(cluster, response, server)


def test_login_on_one_instance_launches_on_the_other(cluster: Cluster) -> None:
    first, first_cookie = cluster.login(cluster.a, LaunchUser.learner("learner-a"))
    accepted = cluster.post_launch(cluster.a, cluster.launch_body(first), first_cookie)
    assert_accepted(cluster, accepted, cluster.a)

    second_user = LaunchUser.learner("learner-b", name="Béa Second", given_name="Béa")
    second, second_cookie = cluster.login(cluster.a, second_user)
    response = cluster.post_launch(cluster.b, cluster.launch_body(second), second_cookie)
    assert_accepted(cluster, response, cluster.b)
    assert "Béa Second" in response.text, cluster.failure(response, cluster.b)
