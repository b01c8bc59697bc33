"""Tests of the harness's AGS 2.0 and NRPS 2.0 services (lti1p3platform behind real HTTP).

Tokens are obtained the way a tool does: a client-credentials grant with a JWT client
assertion signed by the simulated tool's key, at the platform's ``/token``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import pytest
import requests

from . import (
    DEFAULT_RESOURCE_LINK_ID,
    NOT_GRADABLE,
    LaunchUser,
    Platform,
    cached_rsa_private_key_pem,
    public_key_pem,
)
from . import tool_sim as tool
from .server import LoopbackServer, Request, Response
from .tool_sim import AGS_CLAIM, ASSERTION_TYPE, LINEITEM_RO_SCOPE, SCORE_SCOPE, verify_id_token

TOOL_BASE_URL = "http://localhost:8999"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES = (LINEITEM_SCOPE, LINEITEM_RO_SCOPE, RESULT_SCOPE, SCORE_SCOPE, NRPS_SCOPE)
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULTS_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@pytest.fixture
def platform() -> Iterator[Platform]:
    """A running platform that knows the simulated tool's public key."""
    tool_public = public_key_pem(cached_rsa_private_key_pem(tool.TOOL_KEY_NAME))
    with Platform(tool_base_url=TOOL_BASE_URL, tool_public_key_pem=tool_public) as running:
        yield running


def service_token(platform: Platform, *scopes: str) -> str:
    """A bearer token from the platform's /token, as a tool gets one."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": tool.client_assertion(platform),
        "scope": " ".join(scopes or ALL_SCOPES),
    }
    response = requests.post(platform.auth_token_url, data=form, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Client:
    """A tool's service calls with one token."""

    def __init__(self, platform: Platform, *scopes: str, token: str | None = None) -> None:
        self.token = token or service_token(platform, *scopes)

    def call(
        self, method: str, url: str, body: Any = None, content_type: str = "", **kw: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        if content_type:
            headers["Content-Type"] = content_type
        return requests.request(method, url, json=body, headers=headers, timeout=5, **kw)

    def score(self, url: str, **fields: Any) -> requests.Response:
        return self.call("POST", scores_url(url), score(**fields), SCORE_TYPE)


def scores_url(lineitem_url: str, leaf: str = "scores") -> str:
    """``<lineitem path>/<leaf>?<lineitem query>``: built by URL parsing, as a tool must."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=f"{parts.path}/{leaf}"))


def score(**fields: Any) -> dict[str, Any]:
    """A complete FullyGraded score for ``ada``, updated with ``fields`` (None removes)."""
    value: dict[str, Any] = {
        "userId": "ada",
        "timestamp": "2026-03-01T10:00:00+00:00",
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "scoreGiven": 3,
        "scoreMaximum": 4,
        **fields,
    }
    return {name: item for name, item in value.items() if item is not None}


def launch_claims(platform: Platform, **options: Any) -> dict[str, Any]:
    login = platform.login_params(LaunchUser.learner("ada"))
    request = tool.auth_request(login, redirect_uri=platform.tool_launch_url)
    return verify_id_token(platform, platform.id_token_for(request, **options)["id_token"])


# -- launches --------------------------------------------------------------------------------
def test_declarative_launch_carries_line_item_1_unchanged(platform: Platform) -> None:
    assert platform.ags_lineitem_url == f"{platform.base_url}/ags/lineitems/1?type_id=7"
    claim = launch_claims(platform)[AGS_CLAIM]
    assert claim["lineitem"] == platform.ags_lineitem_url
    assert claim["lineitems"] == platform.ags_lineitems_url
    assert set(claim["scope"]) == {LINEITEM_RO_SCOPE, RESULT_SCOPE, SCORE_SCOPE}

    response = Client(platform).call("GET", claim["lineitem"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == LINEITEM_TYPE
    assert response.json() == {
        "id": platform.ags_lineitem_url,
        "label": "DATAide",
        "scoreMaximum": 1,
        "resourceLinkId": DEFAULT_RESOURCE_LINK_ID,
    }


def test_programmatic_launch_has_no_lineitem_claim(platform: Platform) -> None:
    claim = launch_claims(platform, ags_lineitem=None)[AGS_CLAIM]
    assert "lineitem" not in claim
    assert claim["lineitems"] == platform.ags_lineitems_url
    assert LINEITEM_SCOPE in claim["scope"]

    other = platform.add_lineitem("Quiz", 10, tag="quiz")
    assert launch_claims(platform, ags_lineitem=other)[AGS_CLAIM]["lineitem"] == other
    login = platform.login_params(LaunchUser.learner(), auth_options={"ags_lineitem": False})
    page = requests.get(
        platform.auth_login_url,
        params=tool.auth_request(login, redirect_uri=platform.tool_launch_url),
        timeout=5,
    )
    token = tool.parse_html(page.text).forms[0]["inputs"]["id_token"]
    assert "lineitem" not in verify_id_token(platform, token)[AGS_CLAIM]


# -- line items ------------------------------------------------------------------------------
def test_line_items_are_created_filtered_and_paged(platform: Platform) -> None:
    client = Client(platform)
    created = client.call(
        "POST",
        platform.ags_lineitems_url,
        {"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-2", "tag": "quiz"},
        LINEITEM_TYPE,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"] == LINEITEM_TYPE
    assert created.json()["id"] == platform.lineitem_url(2)
    assert platform.lineitems[2]["tag"] == "quiz"
    invalid: list[Any] = [
        {"scoreMaximum": 1},
        {"label": "x", "scoreMaximum": 0},
        {"label": "x"},
        [],
    ]
    for bad in invalid:
        refused = client.call("POST", platform.ags_lineitems_url, bad, "application/json")
        assert refused.status_code == 400
        assert "error" in refused.json()

    def ids(**params: str) -> list[str]:
        response = client.call("GET", platform.ags_lineitems_url, params=params)
        assert response.headers["Content-Type"] == CONTAINER_TYPE
        return [item["id"] for item in response.json()]

    assert ids() == [platform.lineitem_url(1), platform.lineitem_url(2)]
    assert ids(resource_link_id="rl-2", tag="quiz") == [platform.lineitem_url(2)]
    assert ids(resource_link_id=DEFAULT_RESOURCE_LINK_ID) == [platform.ags_lineitem_url]
    assert ids(tag="none") == []

    first = client.call("GET", platform.ags_lineitems_url, params={"limit": "1"})
    assert [item["id"] for item in first.json()] == [platform.lineitem_url(1)]
    assert first.headers["Link"].endswith('>; rel="next"')
    second = client.call("GET", first.links["next"]["url"])
    assert [item["id"] for item in second.json()] == [platform.lineitem_url(2)]
    assert "Link" not in second.headers
    assert client.call("GET", f"{platform.ags_lineitems_url}?limit=0").status_code == 400


def test_line_item_put_delete_and_not_found(platform: Platform) -> None:
    client = Client(platform)
    url = platform.add_lineitem("Quiz", 5)
    replaced = client.call("PUT", url, {"label": "Quiz 2", "scoreMaximum": 7}, LINEITEM_TYPE)
    assert replaced.json() == {"id": url, "label": "Quiz 2", "scoreMaximum": 7}
    assert client.call("DELETE", url).status_code == 204
    assert client.call("GET", url).status_code == 404
    assert client.score(url).status_code == 404
    assert client.call("GET", platform.lineitem_url(1).replace("=7", "=8")).status_code == 404
    assert client.call("POST", url, {}, LINEITEM_TYPE).status_code == 405


def test_read_only_token_cannot_write_line_items(platform: Platform) -> None:
    client = Client(platform, LINEITEM_RO_SCOPE)
    assert client.call("GET", platform.ags_lineitems_url).status_code == 200
    body = {"label": "x", "scoreMaximum": 1}
    refused = client.call("POST", platform.ags_lineitems_url, body, LINEITEM_TYPE)
    assert refused.status_code == 401
    assert client.score(platform.ags_lineitem_url).status_code == 401


# -- scores and results ----------------------------------------------------------------------
def test_scores_are_stored_like_moodle_and_served_as_results(platform: Platform) -> None:
    client = Client(platform)
    url = platform.add_lineitem("Quiz", 10)
    stored = client.score(url)
    assert stored.status_code == 200, stored.text
    assert platform.scores[(2, "ada")]["scoreGiven"] == 3
    assert platform.score_posts[-1]["query"] == {"type_id": "7"}

    same_time = client.score(url, scoreGiven=4)
    older = client.score(url, timestamp="2026-03-01T09:00:00Z")
    assert (same_time.status_code, older.status_code) == (409, 409)
    assert platform.scores[(2, "ada")]["scoreGiven"] == 3

    results = client.call("GET", scores_url(url, "results"))
    assert results.headers["Content-Type"] == RESULTS_TYPE
    [result] = results.json()
    assert result["userId"] == "ada"
    assert (result["resultScore"], result["resultMaximum"]) == (7.5, 10)
    assert result["scoreOf"] == url
    assert platform.results(2) == results.json()

    pending = client.score(url, gradingProgress="Pending", timestamp="2026-03-01T11:00:00+01:00")
    assert pending.status_code == 409  # 11:00+01:00 is 10:00 UTC, not after the stored one
    pending = client.score(url, gradingProgress="Pending", timestamp="2026-03-01T12:00:00+01:00")
    assert pending.status_code == 200
    assert "scoreGiven" not in platform.scores[(2, "ada")]
    assert "resultScore" not in platform.results(2)[0]
    assert [post["status"] for post in platform.score_posts] == [200, 409, 409, 409, 200]

    client.score(url, userId="bob", comment="well done")
    only_bob = client.call("GET", scores_url(url, "results"), params={"user_id": "bob"})
    assert [r["comment"] for r in only_bob.json()] == ["well done"]
    paged = client.call("GET", scores_url(url, "results"), params={"limit": "1"})
    assert "type_id=7" in paged.links["next"]["url"]


@pytest.mark.parametrize(
    "changes",
    [
        {"userId": None},
        {"timestamp": None},
        {"activityProgress": None},
        {"gradingProgress": None},
        {"timestamp": "2026-03-01T10:00:00"},
        {"timestamp": "yesterday"},
        {"activityProgress": "Done"},
        {"gradingProgress": "Graded"},
        {"scoreMaximum": None},
        {"scoreGiven": -1},
    ],
)
def test_invalid_scores_are_400(platform: Platform, changes: dict[str, Any]) -> None:
    response = Client(platform, SCORE_SCOPE).score(platform.ags_lineitem_url, **changes)
    assert response.status_code == 400
    assert response.json()["error"]
    assert platform.scores == {}


def test_score_media_types_and_not_gradable_users(platform: Platform) -> None:
    client = Client(platform, SCORE_SCOPE)
    url = scores_url(platform.ags_lineitem_url)
    assert client.call("POST", url, score(), "application/json").status_code == 200
    assert client.call("POST", url, score(), "text/plain").status_code == 415
    platform.not_gradable = {"carol"}
    refused = client.score(platform.ags_lineitem_url, userId="carol")
    assert (refused.status_code, refused.json()) == (400, {"error": NOT_GRADABLE})
    assert (1, "carol") not in platform.scores
    # The Moodle query string is part of the id: a naive "+ /scores" hits the line item URL.
    naive = client.call("POST", f"{platform.ags_lineitem_url}/scores", score(), SCORE_TYPE)
    assert naive.status_code == 405


# -- tokens ----------------------------------------------------------------------------------
def test_tokens_are_checked_by_the_library(platform: Platform) -> None:
    url = platform.ags_lineitem_url
    assert requests.get(url, timeout=5).status_code == 401
    assert Client(platform, token="not.a.jwt").call("GET", url).status_code == 401
    claims = {"iss": platform.issuer, "sub": platform.client_id, "scopes": LINEITEM_RO_SCOPE}
    expired = platform.sign({**claims, "exp": int(time.time()) - 10})
    assert Client(platform, token=expired).call("GET", url).status_code == 401
    wrong_issuer = platform.sign({**claims, "iss": "https://elsewhere.example"})
    assert Client(platform, token=wrong_issuer).call("GET", url).status_code == 401
    foreign = jwt.encode(
        claims,
        cached_rsa_private_key_pem("not-the-platform"),
        algorithm="RS256",
        headers={"kid": platform.current_kid},
    )
    assert Client(platform, token=foreign).call("GET", url).status_code == 401
    assert Client(platform, token=platform.sign(claims)).call("GET", url).status_code == 200
    assert Client(platform, NRPS_SCOPE).call("GET", url).status_code == 401


def test_tokens_verify_by_kid_across_key_rotation(platform: Platform) -> None:
    old = Client(platform)
    platform.rotate_key()
    new = Client(platform)
    assert jwt.get_unverified_header(new.token)["kid"] == platform.current_kid
    for client in (old, new):
        assert client.call("GET", platform.ags_lineitems_url).status_code == 200
    platform.rotate_key(keep_old=False)
    assert old.call("GET", platform.ags_lineitems_url).status_code == 401


# -- NRPS ------------------------------------------------------------------------------------
def test_memberships_are_paged_and_filtered(platform: Platform) -> None:
    client = Client(platform, NRPS_SCOPE)
    empty = client.call("GET", platform.nrps_memberships_url)
    assert empty.headers["Content-Type"] == MEMBERSHIP_TYPE
    assert empty.json()["members"] == []
    assert empty.json()["id"] == platform.nrps_memberships_url
    ada = platform.add_member(LaunchUser.learner("ada"))
    assert ada == {
        "user_id": "ada",
        "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        "status": "Active",
        "name": "Ada Learner",
        "email": "ada@example.org",
    }
    platform.add_member(LaunchUser.instructor("grace"))
    platform.members.append({"user_id": "bob", "roles": ["Learner"]})

    first = client.call("GET", platform.nrps_memberships_url, params={"limit": "2"})
    body = first.json()
    assert body["context"]["id"] == "course-v1:DATAide+M1+2026"
    assert [m["user_id"] for m in body["members"]] == ["ada", "grace"]
    assert "next" not in body
    second = client.call("GET", first.links["next"]["url"])
    assert [(m["user_id"], m["status"]) for m in second.json()["members"]] == [("bob", "Active")]
    assert "Link" not in second.headers
    learners = client.call("GET", platform.nrps_memberships_url, params={"role": "Learner"})
    assert [m["user_id"] for m in learners.json()["members"]] == ["ada", "bob"]
    assert platform.members[2] == {"user_id": "bob", "roles": ["Learner"]}  # served copies

    platform.nrps_refuse = True
    refused = client.call("GET", platform.nrps_memberships_url)
    assert refused.status_code == 403
    assert refused.json()["error"] == "above_response_limit"
    assert Client(platform, SCORE_SCOPE).call("GET", platform.nrps_memberships_url).status_code == (
        401
    )
    assert platform.nrps_requests == 6


# -- faults ----------------------------------------------------------------------------------
def test_planned_failures_and_delays_store_nothing(platform: Platform) -> None:
    client = Client(platform, SCORE_SCOPE)
    platform.faults.fail_next(2, status=502)
    platform.faults.delay_next(1, 0.3)
    statuses = [client.score(platform.ags_lineitem_url).status_code for _ in range(2)]
    assert statuses == [502, 502]
    with pytest.raises(requests.Timeout):
        requests.post(
            scores_url(platform.ags_lineitem_url),
            json=score(),
            headers={"Authorization": f"Bearer {client.token}", "Content-Type": SCORE_TYPE},
            timeout=0.1,
        )
    deadline = time.monotonic() + 5  # the delayed request answers 504 after the client left
    while len(platform.score_posts) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert platform.scores == {}
    assert client.score(platform.ags_lineitem_url).status_code == 200
    assert [(p["fault"], p["status"]) for p in platform.score_posts] == [
        ("fail", 502), ("fail", 502), ("delay", 504), (None, 200),
    ]  # fmt: skip
    assert platform.faults.pending == 0


def test_failure_rate_is_seeded_and_latency_applies_to_every_ags_call(
    platform: Platform,
) -> None:
    client = Client(platform, SCORE_SCOPE, LINEITEM_RO_SCOPE)

    def run() -> list[int]:
        platform.faults.seed(7)
        platform.faults.failure_rate = 0.5
        return [
            client.score(platform.ags_lineitem_url, userId=f"u{i}").status_code for i in range(12)
        ]

    first = run()
    platform.scores.clear()
    assert run() == first
    assert set(first) == {200, 503}
    assert len(platform.scores) == first.count(200)
    platform.faults.reset()
    platform.faults.latency = 0.05
    started = time.perf_counter()
    assert client.call("GET", platform.ags_lineitems_url).status_code == 200
    assert time.perf_counter() - started >= 0.05
    assert platform.ags_requests == 25


def test_concurrent_score_posts_are_all_recorded(platform: Platform) -> None:
    client = Client(platform, SCORE_SCOPE)
    codes: list[int] = []

    def post(user: str) -> None:
        codes.append(client.score(platform.ags_lineitem_url, userId=user).status_code)

    threads = [threading.Thread(target=post, args=(f"user-{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 16
    assert len(platform.scores) == len(platform.score_posts) == 16


def test_a_stopped_platform_ends_injected_delays() -> None:
    with Platform(tool_base_url=TOOL_BASE_URL) as platform:
        platform.faults.delay_next(1, 30)
    started = time.perf_counter()
    platform.faults.sleep(30)
    assert time.perf_counter() - started < 1


def test_loopback_server_passes_put_delete_and_raw_bodies() -> None:
    seen: list[Request] = []

    def echo(request: Request) -> Response:
        seen.append(request)
        return Response(200, request.body, "application/octet-stream")

    server = LoopbackServer(echo)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/x"
        assert requests.put(url, data=b'{"a": 1}', timeout=5).content == b'{"a": 1}'
        assert requests.delete(url, timeout=5).status_code == 200
    finally:
        server.stop()
    assert [(r.method, r.body, r.form) for r in seen] == [
        ("PUT", b'{"a": 1}', {}), ("DELETE", b"", {}),
    ]  # fmt: skip
