"""LTI Advantage services of the platform harness: AGS 2.0 and NRPS 2.0 via lti1p3platform.

The third-party ``lti1p3platform`` package does the platform-side work: its
``AssignmentsGradesService``/``NamesRoleProvisioningService`` ``handle_*`` methods check the
bearer token (``LTI1P3PlatformConfAbstract.validate_token``), the method and dispatch to the
storage methods implemented here over ``gradebook.Gradebook`` and ``Platform.members``.

Contract (``handle(platform, request)``; URLs under ``Platform.base_url``):

* ``GET|POST /ags/lineitems`` (filters ``resource_link_id``, ``resource_id``, ``tag``; paging
  ``limit``/``page`` with ``Link: <...>; rel="next"``), ``GET|PUT|DELETE /ags/lineitems/<n>``,
  ``POST /ags/lineitems/<n>/scores``, ``GET /ags/lineitems/<n>/results`` (``user_id``, paging);
  ``GET /nrps/memberships`` (``limit``/``page``, ``role``, ``rlid``). A ``type_id`` other than
  ``7`` is 404; a bad ``limit``/``page`` is 400; another method is 405.
* Tokens are the ``/token`` route's (Open edX's consumer): RS256 by the platform key of the
  header's ``kid`` (any key still in the JWKS), ``iss`` = issuer, expiry checked. Missing or bad
  tokens, or tokens without a scope the endpoint accepts, are the library's 401. Scopes:
  line items read ``lineitem``/``lineitem.readonly``, write ``lineitem``; scores ``score``;
  results ``result.readonly``; NRPS ``contextmembership.readonly``.
* Errors are JSON ``{"error": message}`` (a stale score timestamp: 409 ``oldtimestamp``, the
  library's word); successes carry the AGS/NRPS media types; an accepted score is a 200 with an
  empty body. Score bodies must be ``application/vnd.ims.lis.v1.score+json`` or
  ``application/json``, line item bodies ``...lineitem+json`` or ``application/json`` (else
  415). NRPS answers Open edX's 403 ``above_response_limit`` when ``platform.nrps_refuse``.
* Every ``/ags/`` request counts in ``platform.ags_requests`` and sleeps
  ``platform.faults.latency``; score POSTs first take ``platform.faults.score_fault()`` (an
  injected fault is answered before authentication and stores nothing). Every request to a
  scores URL is appended to ``platform.score_posts`` with the status answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jwt
from lti1p3platform.exceptions import LtiException, LtiServiceException
from lti1p3platform.lineitem import TLineItem
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LibraryRequest
from lti1p3platform.request import TRequest
from lti1p3platform.response import Response as LibraryResponse
from lti1p3platform.score import TScore, UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
    TPage,
)
from requests.structures import CaseInsensitiveDict

from .gradebook import TYPE_ID, Gradebook, GradebookError
from .launch import DEFAULT_CONTEXT
from .server import Request, Response

if TYPE_CHECKING:
    from .core import Platform

AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope"
SCOPE_LINEITEM = f"{AGS_SCOPE}/lineitem"
SCOPE_LINEITEM_READONLY = f"{AGS_SCOPE}/lineitem.readonly"
SCOPE_RESULT_READONLY = f"{AGS_SCOPE}/result.readonly"
SCOPE_SCORE = f"{AGS_SCOPE}/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE_MEDIA_TYPES = frozenset({"application/vnd.ims.lis.v1.score+json", "application/json"})
LINEITEM_MEDIA_TYPES = frozenset({"application/vnd.ims.lis.v2.lineitem+json", "application/json"})
_EXPLANATIONS = {
    "above_response_limit": "The number of retrieved users is bigger than the maximum allowed "
    "in the configuration.",
}
_LINEITEM_PATH = re.compile(r"/ags/lineitems/([0-9]+)(/scores|/results)?")


class PlatformConf(LTI1P3PlatformConfAbstract):
    """The harness platform as lti1p3platform sees it: issuer, client id, public keys by kid.

    One instance per request: ``validate_token`` picks the ``Registration`` of the token's kid
    and then lets the library verify it; anything the library raises is an invalid token.
    """

    def init_platform_config(self, **kwargs: Any) -> None:
        """``issuer``, ``client_id`` and ``public_keys`` (kid -> public PEM)."""
        self._issuer: str = kwargs["issuer"]
        self._client_id: str = kwargs["client_id"]
        self._public_keys: dict[str, str] = dict(kwargs["public_keys"])

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        """The registration whose platform public key is the one of ``kid``."""
        public_pem = self._public_keys.get(str(kwargs.get("kid")))
        if public_pem is None:
            raise LtiException(f"no platform key with kid {kwargs.get('kid')!r}")
        registration = Registration().set_iss(self._issuer).set_client_id(self._client_id)
        return registration.set_platform_public_key(public_pem)

    def validate_token(
        self,
        token: str,
        allowed_scopes: list[str] | None = None,
        audience: str | None = None,
    ) -> bool:
        """The library's check with the key that signed ``token``; False when it fails."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            self._registration = self.get_registration_by_params(kid=kid)
            return super().validate_token(token, allowed_scopes, audience)
        except (jwt.PyJWTError, LtiException):
            return False


class ServiceRequest(LibraryRequest):
    """A harness ``Request`` in lti1p3platform's shape, with ``get_data`` = parsed params."""

    def __init__(self, request: Request, params: dict[str, Any]) -> None:
        self._params = params
        super().__init__(request)

    def build_metadata(self, request: Request) -> TRequest:
        """JSON bodies parse to an object (``{}`` when not one); headers case-insensitive."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            payload = json.loads(request.body) if "json" in content_type else None
        except ValueError:
            payload = None
        return {
            "method": request.method,
            "form_data": dict(request.form),
            "get_data": self._params,
            "headers": CaseInsensitiveDict(request.headers),
            "content_type": content_type,
            "path": request.path,
            "json": payload if isinstance(payload, dict) else {},
        }


def _page(items: list[Any], page: int = 1, limit: int | None = None) -> TPage:
    if limit is None:
        return {"content": items, "has_next": False, "next": None}
    start = (page - 1) * limit
    return {"content": items[start : start + limit], "has_next": start + limit < len(items)}


def _check_media_type(request: LibraryRequest | None, accepted: frozenset[str]) -> None:
    content_type = request.content_type if request is not None else None
    if content_type not in accepted:
        raise GradebookError(415, f"Content-Type must be one of {sorted(accepted)}")


class AgsService(AssignmentsGradesService):
    """lti1p3platform's AGS over a ``Gradebook``, with the scopes of the endpoint at hand."""

    def __init__(
        self, request: ServiceRequest, conf: PlatformConf, gradebook: Gradebook, scopes: list[str]
    ) -> None:
        super().__init__(request, conf, gradebook.lineitems_url)
        self._gradebook = gradebook
        self._scopes = scopes

    @property
    def allowed_scopes(self) -> list[str]:
        """A token needs one of these (the library checks ``any``)."""
        return list(self._scopes)

    def find_lineitems(
        self,
        page: int = 1,
        limit: int | None = None,
        line_item_id: str | None = None,
        resource_link_id: str | None = None,
        resource_id: str | None = None,
        tag: str | None = None,
    ) -> TPage:
        """Line items matching the filters, one page of them."""
        found = self._gradebook.find(
            resource_link_id=resource_link_id, resource_id=resource_id, tag=tag
        )
        return _page(found, page, limit)

    def find_lineitem(self, line_item_id: str) -> TLineItem:
        """One line item."""
        return self._gradebook.get(int(line_item_id))

    def create_lineitem(self, creation_data: TLineItem) -> TLineItem:
        """POST: a new line item (400 without label / scoreMaximum > 0)."""
        _check_media_type(self.request, LINEITEM_MEDIA_TYPES)
        return self._gradebook.add(creation_data)

    def update_lineitem(self, update_data: TLineItem) -> TLineItem:
        """PUT: replace a line item's fields."""
        _check_media_type(self.request, LINEITEM_MEDIA_TYPES)
        data = dict(update_data)
        return self._gradebook.replace(int(data.pop("id")), data)

    def delete_lineitem(self, line_item_id: str) -> None:
        """DELETE: the line item and its scores."""
        self._gradebook.delete(int(line_item_id))

    def update_score(self, line_item_id: str, score: TScore) -> UpdateScoreStatus:
        """POST score: stored, or a 4xx (the library maps ``OLD_TIMESTAMP`` to 409)."""
        _check_media_type(self.request, SCORE_MEDIA_TYPES)
        try:
            self._gradebook.post_score(int(line_item_id), score)
        except GradebookError as exc:
            if exc.status_code == 409:
                return UpdateScoreStatus.OLD_TIMESTAMP
            raise
        return UpdateScoreStatus.SUCCESS

    def get_results(
        self,
        line_item_id: str,
        page: int = 1,
        limit: int | None = None,
        user_id: str | None = None,
        type_id: str | None = None,
    ) -> TPage:
        """The line item's results, one page of them."""
        return _page(self._gradebook.results(int(line_item_id), user_id), page, limit)


class NrpsService(NamesRoleProvisioningService):
    """lti1p3platform's NRPS over ``Platform.members`` and the default course context."""

    def __init__(self, request: ServiceRequest, conf: PlatformConf, platform: Platform) -> None:
        super().__init__(request, conf, platform.nrps_memberships_url)
        self._platform = platform

    def get_context_by_id(self) -> Context:
        """The course of every launch (``DEFAULT_CONTEXT``)."""
        return Context(
            id=DEFAULT_CONTEXT["id"], label=DEFAULT_CONTEXT["label"], title=DEFAULT_CONTEXT["title"]
        )

    def is_resource_link_valid(self, context_id: str, resource_link_id: str) -> bool:
        """A resource link is valid when a line item names it."""
        links = {item.get("resourceLinkId") for item in self._platform.lineitems.values()}
        return resource_link_id in links

    def get_member_data_page(
        self,
        page: int = 1,
        limit: int | None = None,
        role: str | None = None,
        since: str | None = None,
    ) -> TPage:
        """Members (copies) with ``role`` (URI or short name), one page; 403 when refused."""
        if self._platform.nrps_refuse:
            raise LtiServiceException("above_response_limit", 403)
        members = [dict(member) for member in self._platform.members]
        if role is not None:
            members = [
                member
                for member in members
                if any(r == role or r.rsplit("#", 1)[-1] == role for r in member.get("roles", []))
            ]
        return _page(members, page, limit)


def _to_http(answer: LibraryResponse) -> Response:
    """The library's ``Response`` as HTTP (what its Django ``wrap_json_resp`` does, with RFC 5988
    ``Link: <...>; rel="next"`` and the ``next`` URL kept out of the body)."""
    if not 200 <= answer.code < 300:
        error = {"error": answer.message}
        if answer.message in _EXPLANATIONS:
            error["explanation"] = _EXPLANATIONS[answer.message]
        challenge = {"WWW-Authenticate": "Bearer"} if answer.code == 401 else {}
        return Response(answer.code, json.dumps(error).encode(), "application/json", challenge)
    result = answer.result
    if result is None:
        return Response(answer.code, b"", answer.media_type)
    headers: dict[str, str] = {}
    body: Any = result
    if isinstance(result, dict):
        next_url = result.get("next")
        if next_url:
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = result["content"] if "has_next" in result else {**result}
        if isinstance(body, dict):
            body.pop("next", None)
    return Response(answer.code, json.dumps(body).encode("utf-8"), answer.media_type, headers)


def _params(query: Mapping[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {name: query[name] for name in names if name in query}
    for name in ("page", "limit"):
        if name in params:
            if not re.fullmatch(r"[0-9]+", params[name]) or int(params[name]) < 1:
                raise GradebookError(400, f"{name} must be a positive integer")
            params[name] = int(params[name])
    return params


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": message}).encode("utf-8")
    return Response(status, body, "application/json", headers or {})


def handle(platform: Platform, request: Request) -> Response:
    """Answer one AGS (``/ags/...``) or NRPS (``/nrps/memberships``) request."""
    conf = PlatformConf(
        issuer=platform.issuer, client_id=platform.client_id, public_keys=platform.public_keys()
    )
    if request.path == "/nrps/memberships":
        with platform._lock:
            platform.nrps_requests += 1
        if request.method != "GET":
            return _error(405, f"Method {request.method} not allowed", {"Allow": "GET"})
        try:
            service_request = ServiceRequest(
                request, _params(request.query, ("page", "limit", "role", "rlid", "since"))
            )
        except GradebookError as exc:
            return _error(exc.status_code, exc.message)
        nrps = NrpsService(service_request, conf, platform)
        return _to_http(nrps.handle_resp(nrps.handle_get_members))

    with platform._lock:
        platform.ags_requests += 1
    platform.faults.sleep(platform.faults.latency)
    if request.path == "/ags/lineitems":
        return _ags(platform, conf, request, "lineitems", "")
    match = _LINEITEM_PATH.fullmatch(request.path)
    if match is None:
        return _error(404, f"not found: {request.path}")
    if match[2] == "/scores":
        return _score(platform, conf, request, match[1])
    return _ags(platform, conf, request, match[2] or "lineitem", match[1])


# (kind, method) -> (query parameters passed on, accepted scopes, lti1p3platform handler)
_READ = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
_ROUTES: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...], str]] = {
    ("lineitems", "GET"): (
        ("page", "limit", "resource_link_id", "resource_id", "tag"),
        _READ,
        "handle_get_lineitems",
    ),
    ("lineitems", "POST"): ((), (SCOPE_LINEITEM,), "handle_create_lineitem"),
    ("lineitem", "GET"): ((), _READ, "handle_get_lineitem"),
    ("lineitem", "PUT"): ((), (SCOPE_LINEITEM,), "handle_update_lineitem"),
    ("lineitem", "DELETE"): ((), (SCOPE_LINEITEM,), "handle_delete_lineitem"),
    ("/scores", "POST"): ((), (SCOPE_SCORE,), "handle_update_score"),
    ("/results", "GET"): (
        ("page", "limit", "user_id", "type_id"),
        (SCOPE_RESULT_READONLY,),
        "handle_get_results",
    ),
}


def _ags(
    platform: Platform, conf: PlatformConf, request: Request, kind: str, lineitem_id: str
) -> Response:
    route = _ROUTES.get((kind, request.method))
    if route is None:
        allowed = ", ".join(method for (name, method) in _ROUTES if name == kind)
        return _error(405, f"Method {request.method} not allowed", {"Allow": allowed})
    names, scopes, handler = route
    if lineitem_id and request.query.get("type_id", TYPE_ID) != TYPE_ID:
        return _error(404, f"unknown type_id {request.query['type_id']!r}")
    try:
        service_request = ServiceRequest(request, _params(request.query, names))
    except GradebookError as exc:
        return _error(exc.status_code, exc.message)
    service = AgsService(service_request, conf, platform.gradebook, list(scopes))
    if not lineitem_id:
        return _to_http(service.handle_resp(getattr(service, handler)))
    # The results "next" link is built from the line item URL (the path, no query).
    service.ags.lineitem_url = f"{platform.ags_lineitems_url}/{lineitem_id}"
    return _to_http(service.handle_resp(getattr(service, handler), line_item_id=lineitem_id))


def _score(platform: Platform, conf: PlatformConf, request: Request, lineitem_id: str) -> Response:
    entry: dict[str, Any] = {
        "lineitem_id": int(lineitem_id),
        "query": dict(request.query),
        "content_type": request.headers.get("content-type"),
        "authorization": request.headers.get("authorization"),
    }
    try:
        entry["score"] = json.loads(request.body)
    except ValueError:
        entry["score"] = None
    fault = platform.faults.score_fault() if request.method == "POST" else None
    if fault is not None:
        status, entry["fault"] = fault
        response = _error(status, f"injected fault: {entry['fault']}")
    else:
        entry["fault"] = None
        response = _ags(platform, conf, request, "/scores", lineitem_id)
    entry["status"] = response.status
    entry["error"] = json.loads(response.body).get("error") if response.status >= 400 else None
    platform.gradebook.record_post(entry)
    return response
