"""Grade rules (``lti_tool.domain.grades``): response classes, backoff, Score bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.content.versions import parse_reference, parse_version
from lti_tool.domain import grades as g

# -- classify_score_response ------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_success_statuses_are_applied(status: int) -> None:
    result = g.classify_score_response(status, '{"ignored": "body"}')
    assert result == g.DeliveryResult(g.APPLIED, status, "")


def test_conflict_means_the_platform_already_has_this_grade() -> None:
    # Moodle answers 409 to a timestamp it already holds (or an older one).
    result = g.classify_score_response(409, "Score timestamp older than stored")
    assert (result.outcome, result.status) == (g.APPLIED, 409)


@pytest.mark.parametrize(
    "body",
    [
        "User is not gradable",
        '{"error": "User is not gradable"}',
        "  USER IS NOT GRADABLE\n",
        "The line item is not gradable for this user",
    ],
)
def test_bad_request_naming_gradability_is_not_gradable(body: str) -> None:
    result = g.classify_score_response(400, body)
    assert result == g.DeliveryResult(g.NOT_GRADABLE, 400, body.strip())


@pytest.mark.parametrize(
    "body", ["", "scoreGiven must be sent with scoreMaximum", '{"error": "invalid timestamp"}']
)
def test_other_bad_requests_fail(body: str) -> None:
    result = g.classify_score_response(400, body)
    assert result == g.DeliveryResult(g.FAILED, 400, body.strip())


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (401, g.TOKEN_REJECTED),
        (404, g.LINE_ITEM_GONE),
        (408, g.RETRY),
        (425, g.RETRY),
        (429, g.RETRY),
        (500, g.RETRY),
        (502, g.RETRY),
        (503, g.RETRY),
        (504, g.RETRY),
        (599, g.RETRY),
        (403, g.FAILED),
        (405, g.FAILED),
        (410, g.FAILED),
        (415, g.FAILED),
        (422, g.FAILED),
        (301, g.FAILED),
        (302, g.FAILED),
    ],
)
def test_status_classes(status: int, outcome: str) -> None:
    result = g.classify_score_response(status, " details ")
    assert (result.outcome, result.status, result.detail) == (outcome, status, "details")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_detail_is_stripped_and_cut(status: int) -> None:
    body = "  " + "x" * 1000 + "  "
    detail = g.classify_score_response(status, body).detail
    assert detail == "x" * 300


@given(st.integers(100, 599), st.text(max_size=400))
def test_every_response_has_exactly_one_known_outcome(status: int, body: str) -> None:
    result = g.classify_score_response(status, body)
    assert result.outcome in {
        g.APPLIED,
        g.NOT_GRADABLE,
        g.RETRY,
        g.FAILED,
        g.LINE_ITEM_GONE,
        g.TOKEN_REJECTED,
    }
    assert result.status == status
    assert len(result.detail) <= 300
    if status >= 500:
        assert result.outcome == g.RETRY


# -- retry_delay -----------------------------------------------------------------------------


def test_retry_delay_starts_at_the_base() -> None:
    assert g.retry_delay(1, 0.5) == g.BACKOFF_BASE_SECONDS
    assert g.retry_delay(0, 0.5) == g.BACKOFF_BASE_SECONDS


@pytest.mark.parametrize("tries", range(1, 30))
def test_retry_delay_grows_by_the_factor_until_the_cap(tries: int) -> None:
    now, after = g.retry_delay(tries, 0.5), g.retry_delay(tries + 1, 0.5)
    if tries < g.BACKOFF_FLAT_TRIES:
        # The first retries are quick and flat: a blip is retried while the learner looks.
        assert now == after == pytest.approx(g.BACKOFF_BASE_SECONDS)
    elif now < g.BACKOFF_MAX_SECONDS:
        assert after == pytest.approx(min(g.BACKOFF_MAX_SECONDS, now * g.BACKOFF_FACTOR))
    else:
        assert after == now == g.BACKOFF_MAX_SECONDS


@given(st.integers(0, 10 * g.MAX_TRIES))
def test_retry_delay_never_exceeds_the_cap_without_jitter(tries: int) -> None:
    assert 0 < g.retry_delay(tries, 0.5) <= g.BACKOFF_MAX_SECONDS
    assert g.retry_delay(tries, 0.5) <= g.retry_delay(tries + 1, 0.5)


@given(st.integers(0, 2 * g.MAX_TRIES), st.floats(0.0, 1.0, exclude_max=True))
def test_jitter_spreads_a_quarter_either_way(tries: int, jitter: float) -> None:
    middle = g.retry_delay(tries, 0.5)
    delay = g.retry_delay(tries, jitter)
    assert 0.75 * middle <= delay <= min(1.25 * middle, g.BACKOFF_MAX_SECONDS)
    if middle < g.BACKOFF_MAX_SECONDS:
        assert g.retry_delay(tries, 0.0) == pytest.approx(0.75 * middle)


def test_the_backoff_reaches_the_cap_and_spans_about_two_days() -> None:
    delays = [g.retry_delay(t, 0.5) for t in range(1, g.MAX_TRIES)]
    assert delays[-1] == g.BACKOFF_MAX_SECONDS
    assert delays[0] < 2  # a blip is retried while the learner still looks
    assert timedelta(days=1) < timedelta(seconds=sum(delays)) < timedelta(days=3)


# -- ScorePost -------------------------------------------------------------------------------


def _score(score_given: float | None) -> g.ScorePost:
    return g.ScorePost(
        user_id="sub-1",
        score_given=score_given,
        score_maximum=1.0,
        activity_progress=g.ACTIVITY_COMPLETED,
        grading_progress=g.GRADING_FULLY_GRADED,
        timestamp="2026-03-01T12:00:00.000+00:00",
    )


@pytest.mark.parametrize("score_given", [1.0, 0.5, 0.0])
def test_score_json_with_a_score(score_given: float) -> None:
    body = _score(score_given).to_json()
    assert body == {
        "userId": "sub-1",
        "activityProgress": g.ACTIVITY_COMPLETED,
        "gradingProgress": g.GRADING_FULLY_GRADED,
        "timestamp": "2026-03-01T12:00:00.000+00:00",
        "scoreGiven": score_given,
        "scoreMaximum": 1.0,
    }


def test_score_json_without_a_score_has_no_score_fields() -> None:
    body = _score(None).to_json()
    assert "scoreGiven" not in body and "scoreMaximum" not in body
    assert body["userId"] == "sub-1" and str(body["timestamp"]).endswith("+00:00")


# -- iso_timestamp and resource_id -----------------------------------------------------------


@pytest.mark.parametrize(
    "zone",
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))],
)
def test_iso_timestamp_has_milliseconds_and_an_offset(zone: timezone) -> None:
    moment = datetime(2026, 3, 1, 12, 34, 56, 789_654, tzinfo=zone)
    stamp = g.iso_timestamp(moment)
    assert stamp.startswith("2026-03-01T12:34:56.789")
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == moment.utcoffset()
    # Truncated to the millisecond: never later than the grading time.
    assert parsed == moment.replace(microsecond=789_000)


_ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


@given(st.datetimes(timezones=st.timezones()))
def test_iso_timestamp_round_trips_to_the_millisecond(moment: datetime) -> None:
    stamp = g.iso_timestamp(moment)
    parsed = datetime.fromisoformat(stamp)
    assert parsed.tzinfo is not None
    assert timedelta(0) <= moment - parsed < timedelta(milliseconds=1)
    assert _ISO_MS.fullmatch(stamp), stamp


def test_iso_timestamp_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        g.iso_timestamp(datetime(2026, 3, 1, 12, 0))


@pytest.mark.parametrize(
    ("item_id", "version"),
    [("m01-maturite", "1.0.0"), ("m01-maturite", "1.4.2"), ("x03-cyber", "2.0.0")],
)
def test_resource_id_names_the_major(item_id: str, version: str) -> None:
    semver = parse_version(version)
    assert semver is not None
    rid = g.resource_id(item_id, semver.major)
    ref = parse_reference(rid)
    assert ref is not None and (ref.id, ref.major) == (item_id, semver.major)
    assert ref.matches(semver)


def test_minor_and_patch_releases_keep_the_column() -> None:
    versions = [parse_version(v) for v in ("1.0.0", "1.9.3")]
    ids = {g.resource_id("m01-maturite", v.major) for v in versions if v is not None}
    assert len(ids) == 1
    assert g.resource_id("m01-maturite", 2) not in ids
