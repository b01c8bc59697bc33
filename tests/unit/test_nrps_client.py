"""NRPS client against a fake platform edge on 127.0.0.1: pages, roles, refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lti_tool.domain.launch import LEARNER, MENTOR
from lti_tool.domain.roster import Member
from lti_tool.lti import NrpsRoster, PlatformUnreachable, RosterRefused
from lti_tool.lti.claims import SCOPE_NRPS
from lti_tool.lti.nrps import MAX_PAGE_BYTES, MAX_PAGES
from lti_tool.lti.services import service_token_key

from .test_ags_client import CLIENT_ID, ISSUER, Answer, FakePlatform, FakeSession, FakeTool, Seen

MEMBERSHIPS = "/mod/lti/services.php/CourseSection/2/bindings/7/memberships"
MEMBERSHIP_PATH = MEMBERSHIPS + "?type_id=7"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    yield platform
    platform.close()


@pytest.fixture
def tool() -> FakeTool:
    return FakeTool()


@pytest.fixture
def roster(tool: FakeTool) -> Iterator[NrpsRoster]:
    roster = NrpsRoster(tool, timeout=0.5)  # type: ignore[arg-type]
    yield roster
    roster.close()


def members_of(platform: FakePlatform, roster: NrpsRoster) -> tuple[Member, ...]:
    return roster.members(FakeSession(), 1, platform.url(MEMBERSHIP_PATH))  # type: ignore[arg-type]


def container(*members: dict[str, Any]) -> bytes:
    return json.dumps({"id": "x", "context": {"id": "c1"}, "members": list(members)}).encode()


def test_pages_are_followed_and_members_mapped(
    platform: FakePlatform, roster: NrpsRoster, tool: FakeTool
) -> None:
    def page(seen: Seen) -> Answer:
        if seen.query.get("page") == ["2"]:
            return Answer(
                body=container(
                    {"user_id": "s2", "roles": ["Learner"], "status": "Inactive"},
                    {"user_id": "t1", "roles": [LEARNER_ROLE]},  # the same person again
                )
            )
        next_url = platform.url(MEMBERSHIPS + "?type_id=7&limit=200&page=2")
        return Answer(
            body=container(
                {"user_id": "t1", "roles": [INSTRUCTOR], "name": "Ada T", "email": "ada@x.org"},
                {"user_id": "s1", "roles": [LEARNER_ROLE], "given_name": "Bo", "family_name": "S"},
                {"roles": [LEARNER_ROLE], "name": "no user id"},
                {"user_id": "", "roles": []},
            ),
            headers={"Link": f'<{next_url}>; rel="next"'},
        )

    platform.routes[("GET", MEMBERSHIPS)] = page
    assert members_of(platform, roster) == (
        Member("t1", frozenset({MENTOR}), "Ada T", "ada@x.org", "Active"),
        Member("s1", frozenset({LEARNER}), "Bo S", None, "Active"),
        Member("s2", frozenset({LEARNER}), None, None, "Inactive"),
    )
    first, second = platform.seen
    assert first.query == {"type_id": ["7"], "limit": ["200"]}
    assert second.query["page"] == ["2"]
    assert first.headers["Accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    assert first.headers["Authorization"] == "Bearer tok-123"
    assert tool.scopes == [(SCOPE_NRPS,)]


def test_a_next_link_to_a_page_already_read_ends_the_roster(
    platform: FakePlatform, roster: NrpsRoster
) -> None:
    link = f'<{platform.url(MEMBERSHIPS + "?type_id=7&limit=200")}>; rel="next"'
    platform.answer("GET", MEMBERSHIPS, body=container({"user_id": "s1"}), headers={"Link": link})
    assert [m.user_id for m in members_of(platform, roster)] == ["s1"]
    assert len(platform.seen) == 1


def test_403_is_a_refused_roster(platform: FakePlatform, roster: NrpsRoster) -> None:
    platform.answer("GET", MEMBERSHIPS, 403, {"detail": "enrollment limit exceeded"})
    with pytest.raises(RosterRefused) as caught:
        members_of(platform, roster)
    assert (caught.value.code, caught.value.status) == ("nrps_refused", 502)
    assert "HTTP 403" in caught.value.detail


def test_401_is_refused_and_drops_the_cached_token(
    platform: FakePlatform, roster: NrpsRoster, tool: FakeTool
) -> None:
    platform.answer("GET", MEMBERSHIPS, 401)
    with pytest.raises(RosterRefused):
        members_of(platform, roster)
    assert tool.store.deleted == [service_token_key(ISSUER, CLIENT_ID, [SCOPE_NRPS])]


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b"oops"), (200, b"not json"), (200, b'{"members": "none"}')],
)
def test_other_failures_are_nrps_failed(
    platform: FakePlatform, roster: NrpsRoster, status: int, body: bytes
) -> None:
    platform.answer("GET", MEMBERSHIPS, status, body)
    with pytest.raises(PlatformUnreachable) as caught:
        members_of(platform, roster)
    assert caught.value.code == "nrps_failed"
    assert platform.url(MEMBERSHIPS) in caught.value.detail


def test_timeout_is_nrps_failed(platform: FakePlatform, roster: NrpsRoster) -> None:
    platform.answer("GET", MEMBERSHIPS, body=container(), delay=5)
    with pytest.raises(PlatformUnreachable, match="timed out"):
        members_of(platform, roster)


def test_oversized_page_is_nrps_failed(platform: FakePlatform, roster: NrpsRoster) -> None:
    platform.answer("GET", MEMBERSHIPS, body=b" " * (MAX_PAGE_BYTES + 1))
    with pytest.raises(PlatformUnreachable, match="size limit"):
        members_of(platform, roster)


def test_endless_pages_fail_rather_than_return_part_of_the_roster(
    platform: FakePlatform, roster: NrpsRoster
) -> None:
    def page(seen: Seen) -> Answer:
        n = int(seen.query.get("page", ["1"])[0])
        link = f'<{MEMBERSHIPS}?page={n + 1}>; rel="next"'
        return Answer(body=container({"user_id": f"u{n}"}), headers={"Link": link})

    platform.routes[("GET", MEMBERSHIPS)] = page
    with pytest.raises(PlatformUnreachable, match=f"more than {MAX_PAGES} pages"):
        members_of(platform, roster)
    assert len(platform.seen) == MAX_PAGES
