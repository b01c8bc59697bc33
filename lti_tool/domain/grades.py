"""Grades as the platform receives them, delivery outcomes and the retry policy.

Pure: no I/O, no clock. Spec: https://www.imsglobal.org/spec/lti-ags/v2p0/#score-publish-service
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Tag of the gradebook column of a module's completion.
COMPLETION_TAG = "dataide-completion"

ACTIVITY_COMPLETED = "Completed"
GRADING_FULLY_GRADED = "FullyGraded"

#: Delivery outcomes.
APPLIED = "applied"
NOT_GRADABLE = "not_gradable"
RETRY = "retry"
FAILED = "failed"
LINE_ITEM_GONE = "line_item_gone"
TOKEN_REJECTED = "token_rejected"  # noqa: S105 - an outcome name, not a secret

#: Backoff: 1 s for the first BACKOFF_FLAT_TRIES retries, then x1.5 per try, capped at
#: one hour: about two days of tries in all. Most failures are a blip (a 503, a timeout)
#: and a grade should reach the gradebook while the learner is still looking; an outage
#: costs a few more quick tries before the waits grow.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_FLAT_TRIES = 4
BACKOFF_FACTOR = 1.5
BACKOFF_MAX_SECONDS = 3600.0
MAX_TRIES = 60


@dataclass(frozen=True)
class LineItemRequest:
    """Find (by resourceLinkId, resourceId and tag) or create a gradebook column."""

    lineitems_url: str
    resource_link_id: str
    resource_id: str
    tag: str
    label: str
    score_maximum: float


@dataclass(frozen=True)
class ScorePost:
    """One AGS ``Score`` (application/vnd.ims.lis.v1.score+json)."""

    user_id: str
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    #: ISO 8601 with offset; the grading time, never the sending time.
    timestamp: str

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "userId": self.user_id,
            "activityProgress": self.activity_progress,
            "gradingProgress": self.grading_progress,
            "timestamp": self.timestamp,
        }
        if self.score_given is not None:
            body["scoreGiven"] = self.score_given
            body["scoreMaximum"] = self.score_maximum
        return body


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str
    status: int | None = None
    detail: str = ""


def classify_score_response(status: int, body: str) -> DeliveryResult:
    """What a platform's answer to a score POST means for the outbox row."""
    detail = body.strip()[:300]
    if 200 <= status < 300:
        return DeliveryResult(APPLIED, status, "")
    if status == 409:
        # Moodle: a score with this or a newer timestamp is already stored, so the
        # platform holds this grade or a later one.
        return DeliveryResult(APPLIED, status, "the platform already had this grade")
    if status == 400 and "gradable" in detail.lower():
        return DeliveryResult(NOT_GRADABLE, status, detail)
    if status == 401:
        return DeliveryResult(TOKEN_REJECTED, status, detail)
    if status == 404:
        return DeliveryResult(LINE_ITEM_GONE, status, detail)
    if status in (408, 425, 429) or status >= 500:
        return DeliveryResult(RETRY, status, detail)
    return DeliveryResult(FAILED, status, detail)


def retry_delay(tries: int, jitter: float) -> float:
    """Seconds before try number ``tries + 1``; ``jitter`` in [0, 1) spreads retries."""
    delay = BACKOFF_BASE_SECONDS * BACKOFF_FACTOR ** max(0, tries - BACKOFF_FLAT_TRIES)
    return float(min(BACKOFF_MAX_SECONDS, delay * (0.75 + 0.5 * jitter)))


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and an explicit offset (Moodle requires one)."""
    if moment.tzinfo is None:
        raise ValueError("grading times are timezone-aware")
    return moment.isoformat(timespec="milliseconds")


def resource_id(item_id: str, major: int) -> str:
    """The gradebook column's ``resourceId``: minor and patch releases keep the column."""
    return f"{item_id}@{major}"
