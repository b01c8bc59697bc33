"""AGS client against a fake platform edge on 127.0.0.1: line items and score posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lti_tool.domain import grades as g
from lti_tool.lti import AgsPublisher, LtiTool, PlatformUnreachable
from lti_tool.lti.ags import MAX_BODY_BYTES, scores_url, with_query
from lti_tool.lti.claims import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from lti_tool.lti.http import USER_AGENT
from lti_tool.lti.services import service_token_key
from lti_tool.settings import Settings

ISSUER = "https://lms.example.org"
CLIENT_ID = "client-1"


@dataclass(frozen=True)
class Seen:
    """One request the fake platform received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to hold the answer back (released early when the platform closes).
    delay: float = 0.0


Route = Callable[[Seen], Answer]


class FakePlatform:
    """Service endpoints answering what each test sets, per (method, path without query)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                platform.seen.append(seen)
                route = platform.routes.get((self.command, urlsplit(self.path).path))
                answer = route(seen) if route else Answer(404, b"no route")
                if answer.delay:
                    platform.release.wait(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # Closing waits for every handler, the held-back ones included.
            daemon_threads = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout test) is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def answer(
        self, method: str, path: str, status: int = 200, body: Any = b"", **kwargs: Any
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[(method, path)] = lambda _seen: Answer(status, data, **kwargs)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class FakeStore:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class FakeTool:
    """The publisher's view of LtiTool: a fixed token, or a refusal."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.refuse = False
        self.scopes: list[tuple[str, ...]] = []

    def service_token(self, session: Any, registration_pk: int, scopes: Any) -> str:
        self.scopes.append(tuple(scopes))
        if self.refuse:
            raise PlatformUnreachable("service_token_refused", "token endpoint answered 400")
        return "tok-123"


class FakeSession:
    """Just enough of a database session: one registration."""

    def get(self, model: Any, pk: int) -> Any:
        return SimpleNamespace(issuer=ISSUER, client_id=CLIENT_ID) if pk == 1 else None


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    yield platform
    platform.close()


@pytest.fixture
def tool() -> FakeTool:
    return FakeTool()


@pytest.fixture
def publisher(tool: FakeTool) -> Iterator[AgsPublisher]:
    publisher = AgsPublisher(tool, timeout=0.5)  # type: ignore[arg-type]
    yield publisher
    publisher.close()


LINEITEMS = "/mod/lti/services.php/2/lineitems"
LINE_ITEM = LINEITEMS + "/3/lineitem"
SCORE = g.ScorePost(
    "user-7", 8.0, 10.0, "Completed", "FullyGraded", "2025-01-02T03:04:05.000+00:00"
)


def line_item_request(platform: FakePlatform) -> g.LineItemRequest:
    return g.LineItemRequest(
        lineitems_url=platform.url(LINEITEMS + "?type_id=7"),
        resource_link_id="rl-1",
        resource_id="module-a@1",
        tag=g.COMPLETION_TAG,
        label="Module A",
        score_maximum=10.0,
    )


# --- URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line_item", "expected"),
    [
        ("https://m.org/lineitems/3?type_id=7", "https://m.org/lineitems/3/scores?type_id=7"),
        ("https://m.org/lineitems/3/", "https://m.org/lineitems/3/scores"),
        ("https://e.org/api/lti/1/lineitems/9", "https://e.org/api/lti/1/lineitems/9/scores"),
    ],
)
def test_scores_url_appends_to_the_path_and_keeps_the_query(line_item: str, expected: str) -> None:
    assert scores_url(line_item) == expected


def test_query_parameters_are_merged_not_appended() -> None:
    url = with_query("https://m.org/lineitems?type_id=7&tag=old", {"tag": "a b", "limit": "200"})
    assert urlsplit(url).path == "/lineitems"
    assert parse_qs(urlsplit(url).query) == {"type_id": ["7"], "tag": ["a b"], "limit": ["200"]}


def test_the_tool_builds_both_clients_from_its_timeout(settings: Settings) -> None:
    lti = LtiTool(settings, FakeStore())  # type: ignore[arg-type]
    assert lti.ags.http.timeout == settings.http_timeout_seconds
    assert lti.nrps.http.timeout == settings.http_timeout_seconds


# --- Scores -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 409])
def test_score_is_applied(
    platform: FakePlatform, publisher: AgsPublisher, tool: FakeTool, status: int
) -> None:
    platform.answer("POST", LINE_ITEM + "/scores", status)
    result = publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM + "?type_id=7"), SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.status) == (g.APPLIED, status)
    [seen] = platform.seen
    assert seen.path == LINE_ITEM + "/scores?type_id=7"
    assert seen.headers["Content-Type"] == "application/vnd.ims.lis.v1.score+json"
    assert seen.headers["Authorization"] == "Bearer tok-123"
    assert seen.headers["User-Agent"] == USER_AGENT
    assert seen.json() == SCORE.to_json()
    assert tool.scopes == [(SCOPE_SCORE,)]


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (400, b'{"error": "User is not gradable"}', g.NOT_GRADABLE),
        (500, b"database down", g.RETRY),
        (503, b"", g.RETRY),
        (404, b"no such line item", g.LINE_ITEM_GONE),
        (302, b"", g.FAILED),  # a redirect is not followed
    ],
)
def test_score_answers_are_classified(
    platform: FakePlatform, publisher: AgsPublisher, status: int, body: bytes, outcome: str
) -> None:
    platform.answer(
        "POST", LINE_ITEM + "/scores", status, body, headers={"Location": platform.url("/x")}
    )
    result = publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM), SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.status) == (outcome, status)
    assert len(platform.seen) == 1


def test_timeout_is_a_retry(platform: FakePlatform, publisher: AgsPublisher) -> None:
    platform.answer("POST", LINE_ITEM + "/scores", 200, delay=5)
    result = publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM), SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.status) == (g.RETRY, None)
    assert "timed out" in result.detail


def test_unreachable_platform_is_a_retry(publisher: AgsPublisher) -> None:
    closed = FakePlatform()
    url = closed.url(LINE_ITEM)
    closed.close()
    result = publisher.post_score(FakeSession(), 1, url, SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.status) == (g.RETRY, None)


def test_401_drops_the_cached_token(
    platform: FakePlatform, publisher: AgsPublisher, tool: FakeTool
) -> None:
    platform.answer("POST", LINE_ITEM + "/scores", 401, b"expired token")
    result = publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM), SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.status) == (g.TOKEN_REJECTED, 401)
    assert tool.store.deleted == [service_token_key(ISSUER, CLIENT_ID, [SCOPE_SCORE])]


def test_refused_token_is_a_retry_without_a_post(
    platform: FakePlatform, publisher: AgsPublisher, tool: FakeTool
) -> None:
    tool.refuse = True
    result = publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM), SCORE)  # type: ignore[arg-type]
    assert (result.outcome, result.detail) == (g.RETRY, "token endpoint answered 400")
    assert platform.seen == []


def test_plain_http_line_item_fails_without_a_token(
    publisher: AgsPublisher, tool: FakeTool
) -> None:
    result = publisher.post_score(FakeSession(), 1, "http://lms.example.org/lineitems/3", SCORE)  # type: ignore[arg-type]
    assert result.outcome == g.FAILED
    assert "https" in result.detail
    assert tool.scopes == []


def test_parallel_deliveries_share_one_publisher(
    platform: FakePlatform, publisher: AgsPublisher
) -> None:
    platform.answer("POST", LINE_ITEM + "/scores", 204)
    results: list[g.DeliveryResult] = []

    def deliver() -> None:
        results.append(publisher.post_score(FakeSession(), 1, platform.url(LINE_ITEM), SCORE))  # type: ignore[arg-type]

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.outcome for r in results] == [g.APPLIED] * 8
    assert len(platform.seen) == 8


# --- Line items -------------------------------------------------------------------


def item(platform: FakePlatform, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": platform.url(f"{LINEITEMS}/{n}/lineitem?type_id=7"),
        "scoreMaximum": 10,
        "label": f"Item {n}",
        "resourceId": "module-a@1",
        "tag": g.COMPLETION_TAG,
        **fields,
    }


def test_line_item_is_found_by_its_filters(
    platform: FakePlatform, publisher: AgsPublisher, tool: FakeTool
) -> None:
    platform.answer(
        "GET",
        LINEITEMS,
        body=[
            item(platform, 1, tag="other"),
            item(platform, 2, resourceId="module-a@2"),
            item(platform, 3, resourceLinkId="another-link"),
            item(platform, 4, resourceLinkId="rl-1"),
        ],
    )
    url = publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    assert url == platform.url(LINEITEMS + "/4/lineitem?type_id=7")
    [seen] = platform.seen
    assert seen.query == {
        "type_id": ["7"],
        "resource_link_id": ["rl-1"],
        "resource_id": ["module-a@1"],
        "tag": [g.COMPLETION_TAG],
    }
    assert seen.headers["Accept"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert seen.headers["Authorization"] == "Bearer tok-123"
    assert set(tool.scopes[0]) == {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY}


def test_a_line_item_without_resource_link_matches(
    platform: FakePlatform, publisher: AgsPublisher
) -> None:
    platform.answer("GET", LINEITEMS, body=[item(platform, 5)])
    url = publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    assert url == platform.url(LINEITEMS + "/5/lineitem?type_id=7")


def test_line_item_pages_are_followed(platform: FakePlatform, publisher: AgsPublisher) -> None:
    def page(seen: Seen) -> Answer:
        if seen.query.get("page") == ["2"]:
            return Answer(body=json.dumps([item(platform, 8)]).encode())
        link = f'<{LINEITEMS}?type_id=7&page=2>; rel="next", <{LINEITEMS}?page=1>; rel="first"'
        return Answer(
            body=json.dumps([item(platform, 1, tag="x")]).encode(), headers={"Link": link}
        )

    platform.routes[("GET", LINEITEMS)] = page
    url = publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    assert url == platform.url(LINEITEMS + "/8/lineitem?type_id=7")
    assert [s.query.get("page") for s in platform.seen] == [None, ["2"]]


def test_missing_line_item_is_created(platform: FakePlatform, publisher: AgsPublisher) -> None:
    platform.answer("GET", LINEITEMS, body=[item(platform, 1, tag="other")])
    platform.answer("POST", LINEITEMS, 201, item(platform, 9, resourceLinkId="rl-1"))
    url = publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    assert url == platform.url(LINEITEMS + "/9/lineitem?type_id=7")
    post = platform.seen[-1]
    assert post.method == "POST"
    assert post.path == LINEITEMS + "?type_id=7"
    assert post.headers["Content-Type"] == "application/vnd.ims.lis.v2.lineitem+json"
    assert post.json() == {
        "scoreMaximum": 10.0,
        "label": "Module A",
        "resourceId": "module-a@1",
        "tag": g.COMPLETION_TAG,
        "resourceLinkId": "rl-1",
    }


@pytest.mark.parametrize(
    ("get_status", "post_status", "says"),
    [(500, 201, "GET"), (200, 403, "POST")],
)
def test_line_item_failures_name_url_and_status(
    platform: FakePlatform, publisher: AgsPublisher, get_status: int, post_status: int, says: str
) -> None:
    platform.answer("GET", LINEITEMS, get_status, [])
    platform.answer("POST", LINEITEMS, post_status, item(platform, 9))
    with pytest.raises(PlatformUnreachable) as caught:
        publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    assert caught.value.code == "ags_line_item_failed"
    failed = get_status if says == "GET" else post_status
    assert f"{says} {platform.url(LINEITEMS)}" in caught.value.detail
    assert f"HTTP {failed}" in caught.value.detail


def test_line_item_401_drops_the_cached_token(
    platform: FakePlatform, publisher: AgsPublisher, tool: FakeTool
) -> None:
    platform.answer("GET", LINEITEMS, 401)
    with pytest.raises(PlatformUnreachable):
        publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
    key = service_token_key(ISSUER, CLIENT_ID, [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY])
    assert tool.store.deleted == [key]


def test_oversized_line_item_answer_fails(platform: FakePlatform, publisher: AgsPublisher) -> None:
    platform.answer("GET", LINEITEMS, body=b"[" + b" " * MAX_BODY_BYTES + b"]")
    with pytest.raises(PlatformUnreachable, match="size limit"):
        publisher.line_item_url(FakeSession(), 1, line_item_request(platform))  # type: ignore[arg-type]
