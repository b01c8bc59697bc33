"""The ``Platform`` test double: an Open edX-like LTI 1.3 platform backed by LtiConsumer1p3.

See ``Platform`` for the contract; HTTP routing lives in ``routes``, consumer calls in
``openedx``, HTML in ``pages``.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .gradebook import Faults, Gradebook
from .keys import (
    cached_rsa_private_key_pem,
    decode_segments,
    public_key_pem,
    resign_rs256,
    sign_rs256,
)
from .launch import (
    DEEP_LINKING_REQUEST,
    DEEP_LINKING_SETTINGS_CLAIM,
    DEFAULT_CONTEXT,
    DEFAULT_RESOURCE_LINK_ID,
    ID_TOKEN_OPTIONS,
    RESOURCE_LINK_REQUEST,
    AuthRequestError,
    DeepLinkingResult,
)
from .server import LoopbackServer
from .users import LaunchUser

if TYPE_CHECKING:
    from .openedx import ConsumerConfig, LaunchSettings


@dataclass
class _Login:
    user: LaunchUser
    settings: LaunchSettings
    auth_options: dict[str, Any] = field(default_factory=dict)


class Platform:
    """An Open edX-like LTI 1.3 platform for tests, backed by LtiConsumer1p3.

    Contract:

    * Keys: the first signing key is a process-cached 2048-bit RSA key with a fresh uuid4 kid
      (Open edX uses uuid4 kids); ``rotate_key()`` adds a new one and signs with it from then on.
    * URLs (``base_url``, ``issuer``, ``keyset_url``, ``auth_login_url``, ``auth_token_url``,
      ``deep_linking_return_url``, AGS/NRPS URLs) are fixed at construction; the port is bound
      then, and requests are served between ``start()`` and ``stop()`` (or ``with``).
    * ``issuer`` defaults to ``base_url``. The tool is reached at ``{tool_base_url}/lti/login``
      and ``/lti/launch``; its keys at ``tool_key_set_url`` (default ``/lti/jwks`` unless
      ``tool_public_key_pem`` is given) or ``tool_public_key_pem``.
    * ``public_host`` is the host name put in URLs (the server always binds 127.0.0.1); use
      ``"localhost"`` vs ``"127.0.0.1"`` to make platform and tool different *sites*.
    * ``jwks_alg_use``: add ``alg``/``use`` to served JWKs (the LMS serves neither).
    * ``strict_auth_request``: besides the consumer's preflight checks, require the OIDC values
      a spec-following tool sends (see ``id_token_for``).
    * Counters ``jwks_requests``/``token_requests``/``auth_requests`` and lists ``auth_errors``,
      ``issued_id_tokens``, ``deep_linking_responses`` record what the tool did.
    * Services (``services``, through lti1p3platform; bearer tokens from ``/token``): AGS 2.0
      at ``ags_lineitems_url`` (line item ids ``/ags/lineitems/<n>?type_id=7``; line item 1,
      ``ags_lineitem_url``, is the declarative one of ``DEFAULT_RESOURCE_LINK_ID``) and NRPS
      2.0 at ``nrps_memberships_url``. State: ``lineitems`` (id -> fields), ``scores``
      ((line item id, userId) -> latest accepted score), ``score_posts`` (every score request,
      with ``status``), ``results(n)``; settable ``not_gradable`` (subs answered 400),
      ``members`` (NRPS member dicts, see ``add_member``), ``nrps_refuse`` (403 like Open edX
      over its limit); ``faults`` (``gradebook.Faults``); counters ``ags_requests`` and
      ``nrps_requests``.
    """

    def __init__(
        self,
        *,
        tool_base_url: str,
        issuer: str | None = None,
        client_id: str = "dataide-client",
        deployment_id: str = "1",
        tool_key_set_url: str | None = None,
        tool_public_key_pem: str | None = None,
        redirect_uris: list[str] | None = None,
        deep_linking_launch_url: str | None = None,
        public_host: str = "127.0.0.1",
        jwks_alg_use: bool = True,
        strict_auth_request: bool = True,
    ) -> None:
        from . import routes  # deferred: routes imports this module

        self.tool_base_url = tool_base_url.rstrip("/")
        self.tool_login_url = f"{self.tool_base_url}/lti/login"
        self.tool_launch_url = f"{self.tool_base_url}/lti/launch"
        self.deep_linking_launch_url = deep_linking_launch_url or self.tool_launch_url
        self.redirect_uris = list(
            redirect_uris or dict.fromkeys([self.tool_launch_url, self.deep_linking_launch_url])
        )
        if tool_key_set_url is None and tool_public_key_pem is None:
            tool_key_set_url = f"{self.tool_base_url}/lti/jwks"
        self.tool_key_set_url = tool_key_set_url
        self.tool_public_key_pem = tool_public_key_pem
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.jwks_alg_use = jwks_alg_use
        self.strict_auth_request = strict_auth_request

        self._server = LoopbackServer(lambda request: routes.handle(self, request))
        self.base_url = f"http://{public_host}:{self._server.port}"
        self.issuer = issuer or self.base_url
        self.keyset_url = f"{self.base_url}/jwks"
        self.auth_login_url = f"{self.base_url}/auth"
        self.auth_token_url = f"{self.base_url}/token"
        self.deep_linking_return_url = f"{self.base_url}/dl/response"
        self.ags_lineitems_url = f"{self.base_url}/ags/lineitems"
        self.nrps_memberships_url = f"{self.base_url}/nrps/memberships"
        self.gradebook = Gradebook(self.ags_lineitems_url)
        self.ags_lineitem_url = self.gradebook.lineitem_url(1)
        self.faults = Faults()
        self.members: list[dict[str, Any]] = []
        self.nrps_refuse = False

        self._lock = threading.Lock()
        self._key_names = itertools.count()
        self._keys: dict[str, str] = {}  # kid -> private PEM, newest first
        self._current_kid = ""
        self.rotate_key(keep_old=False)
        self._logins: dict[str, _Login] = {}
        self._course_pages: dict[tuple[str, str], tuple[LaunchUser, dict[str, Any]]] = {}
        self._storage_pages: set[tuple[str, str]] = set()
        self.jwks_requests = 0
        self.token_requests = 0
        self.auth_requests = 0
        self.auth_errors: list[str] = []
        self.issued_id_tokens: list[str] = []
        self.deep_linking_responses: list[DeepLinkingResult] = []
        self.ags_requests = 0
        self.nrps_requests = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Platform:
        """Start serving HTTP; returns ``self``."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent); injected delays end at once."""
        self.faults.release()
        self._server.stop()

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- keys ------------------------------------------------------------------------------
    @property
    def current_kid(self) -> str:
        """The kid of the key that signs new tokens."""
        return self._current_kid

    @property
    def private_key_pem(self) -> str:
        """The current signing key (PKCS#8 PEM)."""
        return self._signing_key()[1]

    def _signing_key(self) -> tuple[str, str]:
        # (kid, PEM) read together, so a concurrent rotate_key() cannot mix two keys.
        with self._lock:
            return self._current_kid, self._keys[self._current_kid]

    def rotate_key(self, *, keep_old: bool = True) -> str:
        """Make a new signing key with a new kid and return the kid.

        With ``keep_old`` the JWKS publishes the new key and every earlier one (new first);
        without it only the new key is published (a tool that cached the old JWKS then has to
        refetch on the unknown kid).
        """
        kid = str(uuid.uuid4())
        pem = cached_rsa_private_key_pem(f"platform-{next(self._key_names)}")
        with self._lock:
            self._keys = {kid: pem, **(self._keys if keep_old else {})}
            self._current_kid = kid
        return kid

    def public_keys(self) -> dict[str, str]:
        """kid -> public PEM of every published key (what service tokens may be signed with)."""
        with self._lock:
            keys = dict(self._keys)
        return {kid: public_key_pem(pem) for kid, pem in keys.items()}

    def jwks(self) -> dict[str, Any]:
        """The platform JWKS as served at ``keyset_url`` (built by the consumer's key handler)."""
        from . import openedx

        keys = []
        for kid, pem in list(self._keys.items()):
            jwk = openedx.public_jwk(pem, kid)
            if self.jwks_alg_use:
                jwk.update({"alg": "RS256", "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}

    def sign(
        self,
        payload: dict[str, Any],
        headers: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
    ) -> str:
        """Sign ``payload`` with RS256 using the key ``kid`` (default: current key).

        The header is ``{"alg": "RS256", "kid": <kid>, "typ": "JWT"}`` updated with ``headers``;
        a ``None`` value removes that field. The header is kept verbatim, so ``alg`` may lie.
        """
        kid = kid or self._current_kid
        header: dict[str, Any] = {"alg": "RS256", "kid": kid, "typ": "JWT", **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return sign_rs256(self._keys[kid], payload, header)

    # -- consumer configuration --------------------------------------------------------------
    def consumer_config(self) -> ConsumerConfig:
        """The consumer settings for the current key (what an LtiConfiguration row holds)."""
        from .openedx import ConsumerConfig

        kid, private_pem = self._signing_key()
        return ConsumerConfig(
            issuer=self.issuer,
            client_id=self.client_id,
            deployment_id=self.deployment_id,
            tool_login_url=self.tool_login_url,
            tool_launch_url=self.tool_launch_url,
            deep_linking_launch_url=self.deep_linking_launch_url,
            deep_linking_return_url=self.deep_linking_return_url,
            redirect_uris=tuple(self.redirect_uris),
            private_key_pem=private_pem,
            kid=kid,
            ags_lineitems_url=self.ags_lineitems_url,
            ags_lineitem_url=self.ags_lineitem_url,
            nrps_memberships_url=self.nrps_memberships_url,
            tool_public_key_pem=self.tool_public_key_pem,
            tool_keyset_url=self.tool_key_set_url,
        )

    # -- login initiation ------------------------------------------------------------------
    def login_params(
        self,
        user: LaunchUser,
        *,
        message_type: str = RESOURCE_LINK_REQUEST,
        resource_link_id: str = DEFAULT_RESOURCE_LINK_ID,
        target_link_uri: str | None = None,
        lti_storage_target: str | None = None,
        document_target: str | None = "iframe",
        return_url: str | None = None,
        auth_options: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """The login-initiation parameters the platform sends to the tool's ``/lti/login``.

        ``iss``, ``client_id``, ``lti_deployment_id``, ``target_link_uri``, ``login_hint``
        (= ``user.sub``) and ``lti_message_hint`` come from
        ``LtiConsumer1p3.prepare_preflight_url``; ``lti_storage_target`` (not an Open edX
        feature) is added when given. ``target_link_uri`` replaces the launch (or deep linking)
        URL for this login. The platform remembers the login under its ``lti_message_hint``:
        user, message type, resource link, target, and ``auth_options``, i.e. keyword arguments
        of ``id_token_for`` (context, custom, ags, ags_lineitem, nrps, deep_linking_settings) that
        ``/auth``
        applies when this login's auth request arrives.
        """
        from . import openedx

        unknown = set(auth_options or {}) - ID_TOKEN_OPTIONS
        if unknown:
            raise TypeError(f"unknown auth_options {sorted(unknown)}")
        settings = openedx.LaunchSettings(
            message_type=message_type,
            resource_link_id=resource_link_id,
            target_link_uri=target_link_uri,
            document_target=document_target,
            return_url=return_url,
        )
        params = openedx.query_params(openedx.preflight_url(self.consumer_config(), user, settings))
        with self._lock:
            self._logins[params["lti_message_hint"]] = _Login(
                user, settings, dict(auth_options or {})
            )
        if lti_storage_target is not None:
            params["lti_storage_target"] = lti_storage_target
        return params

    def login_url(self, user: LaunchUser, **login_kwargs: Any) -> str:
        """``{tool_base_url}/lti/login?<login_params(user, **login_kwargs)>`` (a GET login)."""
        return f"{self.tool_login_url}?{urlencode(self.login_params(user, **login_kwargs))}"

    def course_page_url(
        self,
        user: LaunchUser,
        *,
        course: str = "DATAide M1",
        platform_storage: bool = False,
        **login_kwargs: Any,
    ) -> str:
        """URL of an LMS course page whose iframe starts a fresh login for ``user``.

        With ``platform_storage`` the page implements the platform side of the 1EdTech
        client-side postMessage storage (``lti.put_data``/``lti.get_data`` for the tool's
        origin) and the login gets ``lti_storage_target="_parent"`` unless given.
        """
        if platform_storage:
            login_kwargs.setdefault("lti_storage_target", "_parent")
        with self._lock:
            self._course_pages[(course, user.sub)] = (user, dict(login_kwargs))
            if platform_storage:
                self._storage_pages.add((course, user.sub))
            else:
                self._storage_pages.discard((course, user.sub))
        return f"{self.base_url}/course/{quote(course, safe='')}?user={quote(user.sub, safe='')}"

    def course_page_has_storage(self, course: str, login_hint: str) -> bool:
        """Whether the registered course page answers platform-storage postMessages."""
        with self._lock:
            return (course, login_hint) in self._storage_pages

    def course_page_login_url(self, course: str, login_hint: str) -> str | None:
        """A fresh iframe ``src`` for a registered course page, or None if unknown."""
        with self._lock:
            entry = self._course_pages.get((course, login_hint))
        if entry is None:
            return None
        user, login_kwargs = entry
        return self.login_url(user, **login_kwargs)

    # -- OIDC authentication response ------------------------------------------------------
    def id_token_for(
        self,
        auth_request_params: Mapping[str, Any],
        *,
        overrides: dict[str, Any] | None = None,
        remove: list[str] | None = None,
        header_overrides: dict[str, Any] | None = None,
        context: Mapping[str, Any] | None = DEFAULT_CONTEXT,
        custom: dict[str, Any] | None = None,
        ags: bool = True,
        ags_lineitem: str | bool | None = True,
        nrps: bool = True,
        deep_linking_settings: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Answer the tool's OIDC auth request with ``{"id_token": ..., "state": ...}``.

        ``auth_request_params`` are the query parameters of the tool's redirect to
        ``auth_login_url``. Refusals raise ``AuthRequestError`` (with the consumer's exception
        as ``__cause__`` when the consumer refused): spec checks (``launch.spec_problems``,
        when ``strict_auth_request``), an ``lti_message_hint`` this platform never issued or
        the consumer's cache lost, a ``login_hint`` other than the user's ``sub``, then the
        consumer's own preflight checks (nonce, state, registered redirect_uri, client_id).

        The token is the consumer's: user claims from the remembered ``LaunchUser``; ``context``
        (``id``/``label``/``title``/``type``; ``None`` omits the claim), ``custom``, AGS
        and NRPS through the consumer's API. AGS is declarative by default: ``lineitem`` =
        ``ags_lineitem_url`` (``ags_lineitem=True``) or the URL given as ``ags_lineitem``, scopes
        lineitem.readonly/result.readonly/score. ``ags_lineitem=None`` (or ``False``) is the
        programmatic mode: no ``lineitem`` claim, only ``lineitems``, scopes
        lineitem/result.readonly/score, so the tool finds or creates its line item (say by
        ``resourceLinkId`` and ``tag``). The consumer drops
        custom/AGS/NRPS/launch_presentation/tool_platform from deep linking requests.
        ``deep_linking_settings`` is merged into the deep linking claim (only for
        ``LtiDeepLinkingRequest``), ``overrides`` set top-level claims, ``remove``
        deletes them, ``header_overrides`` set header fields (``None`` deletes); any of these
        re-signs with the current key (RS256). Without them the consumer's token is returned
        untouched.
        """
        from . import launch, openedx

        params = launch.normalize(auth_request_params)
        problems = launch.spec_problems(params) if self.strict_auth_request else []
        hint = params.get("lti_message_hint", "")
        with self._lock:
            login = self._logins.get(hint)
        if login is None:
            problems.append(f"unknown lti_message_hint {hint!r}")
        elif openedx.cached_launch_data(hint) is None:
            problems.append("the consumer has no cached launch data for this lti_message_hint")
        elif params.get("login_hint") != login.user.sub:
            problems.append(f"login_hint {params.get('login_hint')!r} is not the user's sub")
        if problems:
            raise AuthRequestError("; ".join(problems))
        assert login is not None
        is_dl = login.settings.message_type == DEEP_LINKING_REQUEST
        if deep_linking_settings is not None and not is_dl:
            raise ValueError("deep_linking_settings needs an LtiDeepLinkingRequest login")
        try:
            response = openedx.launch_request(
                self.consumer_config(),
                params,
                login.user,
                login.settings,
                context=context,
                custom=custom,
                ags=ags,
                nrps=nrps,
                ags_lineitem=ags_lineitem,
            )
        except openedx.Lti1p3Exception as exc:
            raise AuthRequestError(f"consumer refused the auth request: {exc}") from exc
        token = response["id_token"]
        if deep_linking_settings or overrides or remove or header_overrides:
            updates = dict(overrides or {})
            if deep_linking_settings:
                claim = dict(decode_segments(token)[1][DEEP_LINKING_SETTINGS_CLAIM])
                claim.update(deep_linking_settings)
                updates.setdefault(DEEP_LINKING_SETTINGS_CLAIM, claim)
            token = resign_rs256(
                self.private_key_pem,
                token,
                claim_updates=updates,
                remove=list(remove or []),
                header_overrides=dict(header_overrides or {}),
            )
        with self._lock:
            self.issued_id_tokens.append(token)
        return {"id_token": token, "state": response["state"]}

    def auth_response_for(self, auth_request_params: Mapping[str, Any]) -> dict[str, str]:
        """``id_token_for`` with the ``auth_options`` remembered at login (what ``/auth`` does)."""
        from . import launch

        hint = launch.normalize(auth_request_params).get("lti_message_hint", "")
        with self._lock:
            login = self._logins.get(hint)
        options = dict(login.auth_options) if login else {}
        return self.id_token_for(auth_request_params, **options)

    # -- AGS / NRPS state (served by ``services``) -----------------------------------------
    @property
    def lineitems(self) -> dict[int, dict[str, Any]]:
        """Line items by id (the stored fields, without ``id``); live, lock-guarded writes."""
        return self.gradebook.lineitems

    @property
    def scores(self) -> dict[tuple[int, str], dict[str, Any]]:
        """(line item id, userId) -> the latest accepted score, as posted (``scoreGiven``
        only when ``gradingProgress`` is ``FullyGraded``)."""
        return self.gradebook.scores

    @property
    def score_posts(self) -> list[dict[str, Any]]:
        """Every request to a scores URL, in arrival order: ``lineitem_id``, ``query``,
        ``content_type``, ``authorization``, ``score`` (the JSON body, or None), ``fault`` (None,
        ``"fail"``, ``"delay"``, ``"transient"``), ``status`` answered and ``error`` (or None)."""
        return self.gradebook.score_posts

    @property
    def not_gradable(self) -> set[str]:
        """Subs whose scores are refused with 400 ``{"error": "User is not gradable"}``."""
        return self.gradebook.not_gradable

    @not_gradable.setter
    def not_gradable(self, subs: set[str]) -> None:
        self.gradebook.not_gradable = set(subs)

    def lineitem_url(self, lineitem_id: int) -> str:
        """A line item's id URL, ``{ags_lineitems_url}/<n>?type_id=7``."""
        return self.gradebook.lineitem_url(lineitem_id)

    def add_lineitem(self, label: str = "DATAide", score_maximum: float = 1, **fields: Any) -> str:
        """Create a line item as a tool's POST would (``fields``: ``resourceLinkId``, ``tag``,
        ``resourceId``, ...); return its id URL."""
        item = {"label": label, "scoreMaximum": score_maximum, **fields}
        return str(self.gradebook.add(item)["id"])

    def results(self, lineitem_id: int = 1, user_id: str | None = None) -> list[dict[str, Any]]:
        """The results service's answer for a line item (``userId``, ``resultScore`` scaled to
        the line item's ``scoreMaximum``, ``resultMaximum``, ``scoreOf``, ``comment``)."""
        return self.gradebook.results(lineitem_id, user_id)

    def add_member(self, user: LaunchUser, *, status: str = "Active") -> dict[str, Any]:
        """Append ``user`` to ``members`` as Open edX's NRPS serves it (``user_id`` = sub,
        context roles from the consumer's role map, ``name``/``email`` when set); return it."""
        from . import openedx

        member: dict[str, Any] = {
            "user_id": user.sub,
            "roles": openedx.context_roles(user.roles),
            "status": status,
        }
        for name in ("name", "email"):
            if getattr(user, name):
                member[name] = getattr(user, name)
        with self._lock:
            self.members.append(member)
        return member

    # -- deep linking ----------------------------------------------------------------------
    def decode_deep_linking_response(self, jwt_token: str) -> list[dict[str, Any]]:
        """Verify a tool's ``LtiDeepLinkingResponse`` with the consumer; return content items.

        Raises the consumer's exceptions (``Lti1p3Exception`` subclasses, ``jwt`` errors). The
        consumer checks signature, ``exp``, message type and item types only.
        """
        from . import openedx

        return openedx.deep_linking_content_items(self.consumer_config(), jwt_token)

    def deep_linking_response_claims(self, jwt_token: str) -> dict[str, Any]:
        """All claims of a tool JWT, signature-verified by the consumer's ``ToolKeyHandler``.

        For what the consumer does not check (``aud``, ``iss``, ``nonce``, deployment id, the
        echoed ``data``): assert those in the test.
        """
        from . import openedx

        return openedx.verified_tool_claims(self.consumer_config(), jwt_token)
