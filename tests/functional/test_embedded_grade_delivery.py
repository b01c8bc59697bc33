"""The embedded default as `make run` serves it: gunicorn with two workers on SQLite, the
database store, and no `lti-tool worker`: a learner's completion still reaches the
platform's gradebook, delivered by the thread each web process starts."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from lti_tool.content.catalog import load_catalog
from lti_tool.settings import generate_secrets
from tests.functional.platform import LaunchUser, Platform
from tests.functional.test_learning import right_answers, token_of
from tests.functional.test_replay_across_processes import (
    FORM,
    HTTP_TIMEOUT_S,
    ROOT,
    Server,
    add_platform_with_cli,
    free_port,
    run_cli,
    start_gunicorn,
    stop,
    wait_ready,
)

pytestmark = [pytest.mark.slow]
MODULE = "m01-maturite"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Server, Platform]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **generate_secrets(),
        "DATAIDE_ENV": "development",
        "BASE_URL": base_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "GRADE_WORKER": "thread",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "GUNICORN_BIND", "WEB_CONCURRENCY", "FLASK_APP"):
        env.pop(name, None)
    logs = tmp_path / "logs"
    logs.mkdir()
    run_cli(env, "setup")  # migrations, key, and the published versions of content.lock
    with Platform(tool_base_url=base_url) as platform:
        add_platform_with_cli(env, platform)
        server = start_gunicorn("embedded", port, env, logs)
        try:
            wait_ready(server)
            yield server, platform
        finally:
            stop(server)


def _launch(server: Server, platform: Platform, user: LaunchUser, custom: dict[str, str]) -> str:
    login = requests.get(
        f"{server.url}/lti/login",
        params=platform.login_params(user, auth_options={"custom": custom}),
        allow_redirects=False,
        timeout=HTTP_TIMEOUT_S,
    )
    assert login.status_code == 302, login.text[:500]
    auth = dict(parse_qsl(urlsplit(login.headers["Location"]).query))
    cookie = next(
        c.split(";", 1)[0]
        for c in login.raw.headers.getlist("Set-Cookie")
        if c.startswith(f"lti1p3-{auth['state']}=")
    )
    page = requests.post(
        f"{server.url}/lti/launch",
        data=platform.auth_response_for(auth),
        headers={**FORM, "Cookie": cookie},
        timeout=HTTP_TIMEOUT_S,
    )
    assert page.status_code == 200, page.text[:2000] + server.logs()
    return page.text


def test_completion_is_delivered_without_a_worker_process(
    embedded: tuple[Server, Platform],
) -> None:
    server, platform = embedded
    module = load_catalog(ROOT).catalog.modules[MODULE]
    custom = {"dataide_item": MODULE, "dataide_pin": "1", "dataide_dl": str(uuid.uuid4())}
    learner = LaunchUser.learner(sub="embedded-learner", locale="fr-CA")
    html = _launch(server, platform, learner, custom)
    answers = right_answers(module)
    for question in module.questions:
        if not question.counts:
            continue
        answered = requests.post(
            f"{server.url}/learn/answer",
            data={
                "launch_token": token_of(html),
                "question": question.id,
                "answer": answers[question.id],
            },
            timeout=HTTP_TIMEOUT_S,
        )
        assert answered.status_code == 200, answered.text[:2000] + server.logs()
        html = answered.text
    assert "Module terminé." in html
    deadline = time.monotonic() + 30
    while (1, learner.sub) not in platform.scores:
        assert time.monotonic() < deadline, f"no score delivered\n{server.logs()}"
        time.sleep(0.1)
    score = platform.scores[(1, learner.sub)]
    assert (score["scoreGiven"], score["scoreMaximum"]) == (1, 1)
    assert score["gradingProgress"] == "FullyGraded"
