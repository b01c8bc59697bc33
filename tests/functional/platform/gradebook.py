"""AGS state of the platform harness: line items, scores, results and fault injection.

Contract (Moodle-like; ``services`` puts lti1p3platform's AGS handlers in front of it):

* ``Gradebook(lineitems_url)`` holds line items by integer id (line item 1 is the declarative
  one of ``DEFAULT_RESOURCE_LINK_ID``: label "DATAide", scoreMaximum 1). A line item's id URL is
  ``{lineitems_url}/<n>?type_id=7``, with a query string as in Moodle.
* ``add``/``replace`` need a non-empty ``label`` and a number ``scoreMaximum`` > 0 (else a 400
  ``GradebookError``) and keep only the AGS line item fields; unknown ids raise lti1p3platform's
  ``LineItemNotFoundException``.
* ``post_score`` needs ``userId``, ``timestamp`` (ISO 8601 with a UTC offset),
  ``activityProgress`` and ``gradingProgress`` (AGS vocabularies), ``scoreMaximum`` > 0 when
  ``scoreGiven`` is sent (400 otherwise); a user in ``not_gradable`` gets 400
  ``User is not gradable``; a timestamp not after the stored one gets 409. An accepted score is
  stored as sent, minus ``scoreGiven`` unless ``gradingProgress`` is ``FullyGraded``.
* ``results`` are the stored scores scaled to the line item's ``scoreMaximum`` (as Moodle does).
* ``Faults`` plans failures of score POSTs (see its docstring). Everything here is thread-safe.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard
from urllib.parse import urlencode

from lti1p3platform.exceptions import LineItemNotFoundException, LtiServiceException

from .launch import DEFAULT_RESOURCE_LINK_ID as DEFAULT_LINK

TYPE_ID = "7"
LINEITEM_FIELDS = (
    "label", "scoreMaximum", "resourceId", "tag", "resourceLinkId", "startDateTime",
    "endDateTime", "gradesReleased",
)  # fmt: skip
SCORE_REQUIRED = ("userId", "timestamp", "activityProgress", "gradingProgress")
ACTIVITY_PROGRESS = frozenset({"Initialized", "Started", "InProgress", "Submitted", "Completed"})
GRADING_PROGRESS = frozenset({"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"})
NOT_GRADABLE = "User is not gradable"


class GradebookError(LtiServiceException):
    """A refused AGS request; lti1p3platform answers ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _clean_lineitem(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise GradebookError(400, "a line item must be a JSON object")
    label = data.get("label")
    if not isinstance(label, str) or not label.strip():
        raise GradebookError(400, "label is required")
    maximum = data.get("scoreMaximum")
    if not _is_number(maximum) or maximum <= 0:
        raise GradebookError(400, "scoreMaximum must be a number greater than 0")
    return {name: data[name] for name in LINEITEM_FIELDS if data.get(name) is not None}


def _clean_score(data: Any) -> tuple[str, datetime, dict[str, Any]]:
    if not isinstance(data, Mapping):
        raise GradebookError(400, "a score must be a JSON object")
    missing = [name for name in SCORE_REQUIRED if data.get(name) in (None, "")]
    if missing:
        raise GradebookError(400, f"missing required field(s): {', '.join(missing)}")
    user_id = data["userId"]
    if not isinstance(user_id, str | int) or isinstance(user_id, bool):
        raise GradebookError(400, "userId must be a string")
    try:
        timestamp = datetime.fromisoformat(str(data["timestamp"]))
    except ValueError:
        timestamp = None
    if timestamp is None or timestamp.tzinfo is None:
        raise GradebookError(400, "timestamp must be ISO 8601 with a UTC offset")
    if data["activityProgress"] not in ACTIVITY_PROGRESS:
        raise GradebookError(400, f"invalid activityProgress {data['activityProgress']!r}")
    if data["gradingProgress"] not in GRADING_PROGRESS:
        raise GradebookError(400, f"invalid gradingProgress {data['gradingProgress']!r}")
    given, maximum = data.get("scoreGiven"), data.get("scoreMaximum")
    if given is not None and (not _is_number(given) or given < 0):
        raise GradebookError(400, "scoreGiven must be a number >= 0")
    if (given is not None or maximum is not None) and (not _is_number(maximum) or maximum <= 0):
        raise GradebookError(400, "scoreMaximum must be a number greater than 0")
    score = dict(data)
    if score["gradingProgress"] != "FullyGraded":
        score.pop("scoreGiven", None)
    return str(user_id), timestamp, score


class Gradebook:
    """Line items, latest scores and every score POST of one platform."""

    def __init__(self, lineitems_url: str) -> None:
        self.lineitems_url = lineitems_url
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._timestamps: dict[tuple[int, str], datetime] = {}
        self.lineitems: dict[int, dict[str, Any]] = {}
        self.scores: dict[tuple[int, str], dict[str, Any]] = {}
        self.score_posts: list[dict[str, Any]] = []
        self.not_gradable: set[str] = set()
        self.add({"label": "DATAide", "scoreMaximum": 1, "resourceLinkId": DEFAULT_LINK})

    # -- URLs ------------------------------------------------------------------------------
    def lineitem_url(self, lineitem_id: int) -> str:
        """The line item's id: ``{lineitems_url}/<n>?type_id=7``."""
        return f"{self.lineitems_url}/{lineitem_id}?type_id={TYPE_ID}"

    def _view(self, lineitem_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": self.lineitem_url(lineitem_id), **item}

    def _item(self, lineitem_id: int) -> dict[str, Any]:
        item = self.lineitems.get(lineitem_id)
        if item is None:
            raise LineItemNotFoundException(f"no line item {lineitem_id}")
        return item

    # -- line items ------------------------------------------------------------------------
    def add(self, data: Any) -> dict[str, Any]:
        """Create a line item; return it as served (with its ``id`` URL)."""
        item = _clean_lineitem(data)
        with self._lock:
            lineitem_id = next(self._ids)
            self.lineitems[lineitem_id] = item
        return self._view(lineitem_id, item)

    def get(self, lineitem_id: int) -> dict[str, Any]:
        """One line item as served."""
        with self._lock:
            return self._view(lineitem_id, self._item(lineitem_id))

    def find(
        self,
        *,
        resource_link_id: str | None = None,
        resource_id: str | None = None,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Line items (by id) matching every given filter."""
        wanted = {"resourceLinkId": resource_link_id, "resourceId": resource_id, "tag": tag}
        with self._lock:
            items = sorted(self.lineitems.items())
        return [
            self._view(lineitem_id, item)
            for lineitem_id, item in items
            if all(value is None or item.get(name) == value for name, value in wanted.items())
        ]

    def replace(self, lineitem_id: int, data: Any) -> dict[str, Any]:
        """PUT semantics: the new fields replace the old ones."""
        item = _clean_lineitem(data)
        with self._lock:
            self._item(lineitem_id)
            self.lineitems[lineitem_id] = item
        return self._view(lineitem_id, item)

    def delete(self, lineitem_id: int) -> None:
        """Delete a line item and its scores."""
        with self._lock:
            self._item(lineitem_id)
            del self.lineitems[lineitem_id]
            for key in [key for key in self.scores if key[0] == lineitem_id]:
                del self.scores[key]
                del self._timestamps[key]

    # -- scores and results ----------------------------------------------------------------
    def post_score(self, lineitem_id: int, data: Any) -> None:
        """Validate and store a score (see the module contract for refusals)."""
        with self._lock:
            self._item(lineitem_id)
        user_id, timestamp, score = _clean_score(data)
        key = (lineitem_id, user_id)
        with self._lock:
            self._item(lineitem_id)
            if user_id in self.not_gradable:
                raise GradebookError(400, NOT_GRADABLE)
            # Only a score still in ``scores`` counts (tests may clear ``scores``).
            stored = self._timestamps.get(key) if key in self.scores else None
            if stored is not None and stored >= timestamp:
                raise GradebookError(409, "the score is not newer than the stored one")
            self.scores[key] = score
            self._timestamps[key] = timestamp

    def record_post(self, entry: dict[str, Any]) -> None:
        """Append one received score POST (with the status answered) to ``score_posts``."""
        with self._lock:
            self.score_posts.append(entry)

    def results(self, lineitem_id: int, user_id: str | None = None) -> list[dict[str, Any]]:
        """The line item's results, as the results service serves them."""
        with self._lock:
            item = dict(self._item(lineitem_id))
            scores = [
                (user, dict(score))
                for (line, user), score in self.scores.items()
                if line == lineitem_id and user_id in (None, user)
            ]
        results = []
        for user, score in scores:
            query = urlencode({"type_id": TYPE_ID, "user_id": user})
            result: dict[str, Any] = {
                "id": f"{self.lineitems_url}/{lineitem_id}/results?{query}",
                "scoreOf": self.lineitem_url(lineitem_id),
                "userId": user,
                "resultMaximum": item["scoreMaximum"],
            }
            if "scoreGiven" in score:
                scale = item["scoreMaximum"] / score["scoreMaximum"]
                result["resultScore"] = score["scoreGiven"] * scale
            if score.get("comment") is not None:
                result["comment"] = score["comment"]
            results.append(result)
        return results


class Faults:
    """Fault injection for score POSTs (``latency`` for every AGS request); thread-safe.

    * ``fail_next(n, status=500)``: the next ``n`` score POSTs answer ``status``, unstored.
    * ``delay_next(n, seconds)``: the next ``n`` score POSTs sleep ``seconds`` and then answer
      504, unstored (a client whose timeout is shorter sees a timeout; nothing was stored).
    * Planned faults are used in the order they were planned.
    * ``failure_rate``: a score POST with no planned fault answers 503 (unstored) with this
      probability, drawn from a ``random.Random(seed)`` (``seed()`` restarts the sequence).
    * ``latency``: seconds slept before answering every AGS request.
    * ``reset()`` clears all of it; ``release()`` (called by ``Platform.stop``) ends sleeps.
    """

    def __init__(self, seed: int = 0) -> None:
        self.latency = 0.0
        self.failure_rate = 0.0
        self._random = random.Random(seed)
        self._planned: deque[tuple[str, float]] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next ``n`` score POSTs with ``status`` without storing them."""
        with self._lock:
            self._planned.extend([("fail", status)] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        """Sleep ``seconds`` on the next ``n`` score POSTs, then answer 504 without storing."""
        with self._lock:
            self._planned.extend([("delay", seconds)] * n)

    def seed(self, value: int) -> None:
        """Restart the ``failure_rate`` draws from ``value``."""
        with self._lock:
            self._random.seed(value)

    @property
    def pending(self) -> int:
        """How many planned faults are left."""
        with self._lock:
            return len(self._planned)

    def reset(self) -> None:
        """No planned faults, no latency, no failure rate."""
        with self._lock:
            self._planned.clear()
            self.latency = 0.0
            self.failure_rate = 0.0

    def sleep(self, seconds: float) -> None:
        """Sleep, unless ``release()`` was called."""
        if seconds > 0:
            self._released.wait(seconds)

    def release(self) -> None:
        """End current and future sleeps (the platform is stopping)."""
        self._released.set()

    def score_fault(self) -> tuple[int, str] | None:
        """The fault for the score POST at hand, as ``(status, kind)``, or None to store it.

        Consumes one planned fault (sleeping for a delay) or draws against ``failure_rate``.
        """
        with self._lock:
            planned = self._planned.popleft() if self._planned else None
            transient = (
                planned is None
                and self.failure_rate > 0
                and self._random.random() < self.failure_rate
            )
        if planned is not None:
            kind, value = planned
            if kind == "fail":
                return int(value), "fail"
            self.sleep(value)
            return 504, "delay"
        return (503, "transient") if transient else None
