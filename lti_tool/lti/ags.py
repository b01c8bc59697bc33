"""Assignment and Grade Services: find or create a line item, post a score.

Spec: https://www.imsglobal.org/spec/lti-ags/v2p0/

Also the HTTP used by every LTI service call (AGS here, NRPS in :mod:`.nrps`): one
requests session per thread, since deliveries run in parallel threads and a
``requests.Session`` is not thread-safe.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from sqlalchemy.orm import Session

from lti_tool.domain.grades import (
    FAILED,
    RETRY,
    DeliveryResult,
    LineItemRequest,
    ScorePost,
    classify_score_response,
)
from lti_tool.models import Registration
from lti_tool.store import KeyValueStore

from .claims import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from .errors import LtiError, PlatformUnreachable
from .http import USER_AGENT, check_platform_url
from .services import service_token_key

LINEITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"

LINE_ITEM_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
#: Score posts ask for the score scope alone: Open edX in declarative mode grants no
#: ``lineitem`` scope, and a token is cached per scope set anyway.
SCORE_SCOPES = (SCOPE_SCORE,)

#: Largest AGS answer read, in bytes.
MAX_BODY_BYTES = 1024 * 1024
#: Line item container pages followed before giving up.
MAX_LINE_ITEM_PAGES = 20


class TokenSource(Protocol):
    """What service clients need of :class:`~lti_tool.lti.LtiTool`."""

    store: KeyValueStore

    def service_token(
        self, session: Session, registration_pk: int, scopes: Sequence[str]
    ) -> str: ...


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` merged into its query string (same names replaced).

    Moodle's service URLs already carry ``?type_id=``, so nothing is appended by hand.
    """
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params.items()])))


def scores_url(line_item_url: str) -> str:
    """The line item's scores endpoint: ``/scores`` appended to the path, query kept.

    ``.../lineitems/3?type_id=7`` becomes ``.../lineitems/3/scores?type_id=7``.
    """
    parts = urlsplit(line_item_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores", fragment=""))


def forget_service_token(
    tool: TokenSource, session: Session, registration_pk: int, scopes: Sequence[str]
) -> None:
    """Drop a cached token the platform answered 401 to, so the next call fetches one."""
    row = session.get(Registration, registration_pk)
    if row is not None:
        tool.store.delete(service_token_key(row.issuer, row.client_id, scopes))


@dataclass(frozen=True)
class ServiceResponse:
    status: int
    #: At most the byte limit of the request.
    body: bytes
    #: The body was longer than the limit and was cut.
    truncated: bool
    #: Absolute URL of the RFC 5988 ``Link: <...>; rel="next"`` page, if any.
    next_url: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The parsed body; raises ``ValueError`` when it is cut or not JSON."""
        if self.truncated:
            raise ValueError("the answer exceeds the size limit")
        return json.loads(self.body)


def _next_link(resp: requests.Response, url: str) -> str | None:
    for link in resp.links.values():
        if "next" in str(link.get("rel", "")).split() and link.get("url"):
            return urljoin(url, str(link["url"]))
    return None


class ServiceHttp:
    """Bearer-token calls to a platform's services: one requests session per thread,
    a timeout on every call, no redirects, bodies cut at ``max_bytes``."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[tuple[threading.Thread, requests.Session]] = []

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            with self._lock:
                # Sessions of finished threads would otherwise hold sockets until GC.
                for thread, old in [s for s in self._sessions if not s[0].is_alive()]:
                    old.close()
                    self._sessions.remove((thread, old))
                self._sessions.append((threading.current_thread(), session))
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        url: str,
        *,
        token: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> ServiceResponse:
        """Send one request; raises ``requests.RequestException`` on transport errors,
        including a body that takes longer than twice the timeout to arrive."""
        started = time.monotonic()
        with self._session().request(
            method,
            url,
            headers={**headers, "Authorization": f"Bearer {token}"},
            data=body,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        ) as resp:
            content = bytearray()
            truncated = False
            for chunk in resp.iter_content(65536):
                content.extend(chunk)
                if len(content) > self.max_bytes:
                    truncated = True
                    break
                if time.monotonic() - started > 2 * self.timeout:
                    raise requests.Timeout(f"{method} {url}: the answer is too slow")
            return ServiceResponse(
                resp.status_code,
                bytes(content[: self.max_bytes]),
                truncated,
                _next_link(resp, url),
            )

    def close(self) -> None:
        """Close every thread's session; later calls open new ones."""
        with self._lock:
            for _, session in self._sessions:
                session.close()
            self._sessions.clear()
            self._local = threading.local()


class AgsPublisher:
    """Line items and scores through AGS (implements the services' ``GradePublisher``)."""

    def __init__(self, tool: TokenSource, timeout: float) -> None:
        self._tool = tool
        self.http = ServiceHttp(timeout, MAX_BODY_BYTES)

    def close(self) -> None:
        self.http.close()

    def line_item_url(
        self, session: Session, registration_pk: int, request: LineItemRequest
    ) -> str:
        """The ``id`` (URL) of the line item matching ``request``, created if none does.

        A line item matches when its ``resourceId`` and ``tag`` are the request's and its
        ``resourceLinkId``, when it has one, is too. Raises :class:`PlatformUnreachable`
        ``ags_line_item_failed`` (or ``service_token_refused``) when the platform fails,
        :class:`LtiError` ``insecure_url`` for a URL that is not https.
        """
        check_platform_url(request.lineitems_url, "lineitems URL")
        token = self._tool.service_token(session, registration_pk, LINE_ITEM_SCOPES)
        try:
            found = self._find(request, token)
            return found or self._create(request, token)
        except _Refused as exc:
            if exc.status == 401:
                forget_service_token(self._tool, session, registration_pk, LINE_ITEM_SCOPES)
            raise PlatformUnreachable("ags_line_item_failed", exc.detail) from None

    def _find(self, request: LineItemRequest, token: str) -> str | None:
        filters = {
            "resource_link_id": request.resource_link_id,
            "resource_id": request.resource_id,
            "tag": request.tag,
        }
        url = with_query(request.lineitems_url, {k: v for k, v in filters.items() if v})
        seen: set[str] = set()
        for _ in range(MAX_LINE_ITEM_PAGES):
            seen.add(url)
            resp = self._call("GET", url, token, {"Accept": LINEITEM_CONTAINER_TYPE})
            items = _json(resp, "GET", url)
            if not isinstance(items, list):
                raise _Refused(resp.status, f"GET {url}: the answer is not a line item list")
            for item in items:
                if _matches(item, request):
                    return check_platform_url(item["id"], "line item id")
            if resp.next_url is None or resp.next_url in seen:
                return None
            url = check_platform_url(resp.next_url, "next page of line items")
        # Creating a column now could duplicate one on a page not read.
        raise _Refused(0, f"{request.lineitems_url}: more than {MAX_LINE_ITEM_PAGES} pages")

    def _create(self, request: LineItemRequest, token: str) -> str:
        item: dict[str, object] = {
            "scoreMaximum": request.score_maximum,
            "label": request.label,
            "resourceId": request.resource_id,
            "tag": request.tag,
        }
        if request.resource_link_id:
            item["resourceLinkId"] = request.resource_link_id
        url = request.lineitems_url
        headers = {"Content-Type": LINEITEM_TYPE, "Accept": LINEITEM_TYPE}
        resp = self._call("POST", url, token, headers, json.dumps(item).encode())
        created = _json(resp, "POST", url)
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise _Refused(resp.status, f"POST {url}: the answer has no line item id")
        return check_platform_url(created["id"], "line item id")

    def _call(
        self,
        method: str,
        url: str,
        token: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> ServiceResponse:
        try:
            resp = self.http.request(method, url, token=token, headers=headers, body=body)
        except requests.RequestException as exc:
            raise _Refused(0, f"{method} {url}: {exc}") from exc
        if not resp.ok:
            raise _Refused(resp.status, f"{method} {url} answered HTTP {resp.status}")
        return resp

    def post_score(
        self, session: Session, registration_pk: int, line_item_url: str, score: ScorePost
    ) -> DeliveryResult:
        """Post one score; never raises for platform trouble.

        The outcome is :func:`~lti_tool.domain.grades.classify_score_response`'s, or
        ``retry`` for transport errors, timeouts and a refused token, or ``failed`` for
        a line item URL that is not https or a registration that no longer exists. A
        401 answer (``token_rejected``) also drops the cached token.
        """
        try:
            url = scores_url(check_platform_url(line_item_url, "line item URL"))
            token = self._tool.service_token(session, registration_pk, SCORE_SCOPES)
        except PlatformUnreachable as exc:
            return DeliveryResult(RETRY, None, exc.detail or exc.code)
        except LtiError as exc:
            return DeliveryResult(FAILED, None, exc.detail or exc.code)
        body = json.dumps(score.to_json()).encode()
        try:
            resp = self.http.request(
                "POST", url, token=token, headers={"Content-Type": SCORE_TYPE}, body=body
            )
        except requests.RequestException as exc:
            return DeliveryResult(RETRY, None, f"POST {url}: {exc}")
        if resp.status == 401:
            forget_service_token(self._tool, session, registration_pk, SCORE_SCOPES)
        return classify_score_response(resp.status, resp.text)


class _Refused(Exception):
    """A failed AGS call inside :meth:`AgsPublisher.line_item_url` (status 0: no answer)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _json(resp: ServiceResponse, method: str, url: str) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise _Refused(resp.status, f"{method} {url}: {exc}") from None


def _matches(item: object, request: LineItemRequest) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return False
    link = item.get("resourceLinkId")
    return (
        item.get("resourceId") == request.resource_id
        and item.get("tag") == request.tag
        and (not link or link == request.resource_link_id)
    )
