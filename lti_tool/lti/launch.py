"""Launch validation (OIDC step 3): /lti/launch.

pylti1p3's ``MessageLaunch.validate`` is replaced step by step: it has no leeway, checks
the nonce before the signature without consuming it, accepts a replayed
(state, id_token) by design and fetches keys without a timeout. Order here:

1. state present, its record known, and bound to this browser (state cookie, or the
   secret read back from the platform's postMessage storage);
2. the id_token is a JWT whose header names RS256 and a ``kid``;
3. registration found by (iss, aud);
4. signature by ``kid`` against the platform JWKS, ``iss``, ``aud``/``azp``, ``exp`` and
   ``iat`` with the configured leeway;
5. required claims per message type;
6. nonce equal to the one of the state;
7. deployment known and active (a valid launch from an unknown one records it pending);
8. the state record is taken atomically: of two identical POSTs, one wins.

Nothing is written before step 7, and nothing about the person before step 8.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from pylti1p3.contrib.flask import FlaskMessageLaunch
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.launch import (
    DEEP_LINKING,
    RESOURCE_LINK,
    AgsEndpoint,
    DeepLinkingSettings,
    LaunchContext,
    normalize_locale,
)
from lti_tool.models import DEPLOYMENT_ACTIVE, DEPLOYMENT_PENDING, Deployment
from lti_tool.store import KeyValueStore

from . import claims as c
from .errors import LtiError, PendingDeployment
from .login import state_cookie_name
from .platform_keys import PlatformKeyCache
from .roles import map_roles
from .state import USED, LoginState, LoginStateStore
from .toolconf import DbToolConf, DeploymentInfo, RegistrationInfo


class NeedsPlatformStorage(LtiError):
    """No state cookie came back, but the platform offers postMessage storage: the page
    must read the state secret from it and post the launch again."""

    status = 200

    def __init__(self, login_state: LoginState) -> None:
        super().__init__("needs_platform_storage", "state cookie absent; using platform storage")
        self.login_state = login_state


class CookiesBlocked(LtiError):
    """No state cookie and no platform storage: offer to open the tool in a new window."""

    status = 403

    def __init__(self, login_state: LoginState) -> None:
        super().__init__("cookies_blocked", "state cookie absent")
        self.login_state = login_state


class ToolMessageLaunch(FlaskMessageLaunch):
    """pylti1p3's message launch with the tool's validation order and stores."""

    def __init__(
        self,
        request: Any,
        tool_config: DbToolConf,
        *,
        session: Session,
        params: Mapping[str, str],
        cookies: Mapping[str, str],
        states: LoginStateStore,
        store: KeyValueStore,
        key_cache: PlatformKeyCache,
        leeway: int,
        requests_session: Any = None,
        clock: Any = time.time,
    ) -> None:
        # pylti1p3 would build a new requests.Session for every launch otherwise.
        super().__init__(request, tool_config, requests_session=requests_session)
        self._db = session
        self._params = params
        self._cookies = cookies
        self._states = states
        self._store = store
        self._key_cache = key_cache
        self._leeway = leeway
        self._clock = clock
        self._login_state: LoginState | None = None
        self._reg_row: RegistrationInfo | None = None
        self._dep_row: DeploymentInfo | None = None
        self._launch_id = uuid.uuid4().hex

    def _get_request_param(self, key: str) -> str:
        return self._params.get(key, "")

    # -- the steps -------------------------------------------------------------------

    def validate(self) -> ToolMessageLaunch:
        self._validated = True
        try:
            self.validate_state()
            self.validate_jwt_format()
            self.validate_registration()
            self.validate_jwt_signature()
            self.validate_message()
            self.validate_nonce()
            self.validate_deployment()
            self.consume_state()
        except Exception:
            self._validated = False
            raise
        return self

    def validate_state(self) -> ToolMessageLaunch:
        state = self._params.get("state", "")
        if not state:
            raise LtiError("missing_state", "no state parameter")
        if not self._params.get("id_token"):
            raise LtiError("missing_id_token", "no id_token parameter")
        login_state = self._states.peek(state)
        if login_state == USED:
            raise LtiError("launch_replayed", "this state was already used", status=409)
        if not isinstance(login_state, LoginState):
            raise LtiError("unknown_state", "state unknown or expired")
        cookie = self._cookies.get(state_cookie_name(state))
        if cookie is not None:
            if not hmac.compare_digest(cookie, state):
                raise LtiError("state_mismatch", "state cookie differs from state")
        elif login_state.storage_target and login_state.storage_secret:
            secret = self._params.get("lti_storage_secret")
            if secret is None:
                raise NeedsPlatformStorage(login_state)
            if not hmac.compare_digest(secret, login_state.storage_secret):
                raise LtiError("state_mismatch", "platform storage secret differs")
        else:
            raise CookiesBlocked(login_state)
        self._login_state = login_state
        return self

    def validate_jwt_format(self) -> ToolMessageLaunch:
        header, body = parse_unverified(self._params["id_token"])
        if header.get("alg") != "RS256":
            raise LtiError("bad_algorithm", f"alg {header.get('alg')!r}, expected RS256")
        if not header.get("kid"):
            raise LtiError("missing_kid", "no kid in the JWT header")
        self._jwt = {"header": header, "body": body}  # type: ignore[typeddict-item]
        return self

    def validate_registration(self) -> ToolMessageLaunch:
        body = self._jwt["body"]
        iss = body.get("iss")
        aud = body.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and not body.get("azp"):
            raise LtiError("wrong_audience", "several audiences and no azp")
        client_id = body.get("azp") if isinstance(aud, list) and len(aud) > 1 else aud
        if isinstance(client_id, list):
            client_id = client_id[0] if client_id else None
        if not isinstance(iss, str) or not iss:
            raise LtiError("missing_iss", "no iss claim")
        if not isinstance(client_id, str) or not client_id:
            raise LtiError("missing_aud", "no aud claim")
        assert self._login_state is not None
        if iss != self._login_state.issuer:
            raise LtiError("wrong_issuer", "iss differs from the login's registration")
        if client_id != self._login_state.client_id:
            raise LtiError("wrong_audience", "aud differs from the login's registration")
        row = self._tool_config.registration_row(iss, client_id)
        if row is None:
            raise LtiError("unknown_registration", f"iss={iss!r} client_id={client_id!r}")
        self._reg_row = row
        self._registration = None  # library registration only built when a service needs it
        return self

    def validate_jwt_signature(self) -> ToolMessageLaunch:
        assert self._reg_row is not None
        kid = str(self._jwt["header"]["kid"])
        key = self._key_cache.key_for(self._reg_row.key_set_url, kid)
        try:
            jwt.decode(
                self._params["id_token"],
                key.key,
                algorithms=["RS256"],
                audience=self._reg_row.client_id,
                issuer=self._reg_row.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LtiError("token_expired", str(exc)) from exc
        except jwt.ImmatureSignatureError as exc:
            raise LtiError("token_not_yet_valid", str(exc)) from exc
        except jwt.InvalidSignatureError as exc:
            raise LtiError("bad_signature", str(exc)) from exc
        except jwt.InvalidAudienceError as exc:
            raise LtiError("wrong_audience", str(exc)) from exc
        except jwt.InvalidIssuerError as exc:
            raise LtiError("wrong_issuer", str(exc)) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise LtiError("invalid_timestamps", str(exc)) from exc
        except jwt.InvalidTokenError as exc:
            raise LtiError("invalid_jwt", str(exc)) from exc
        body = self._jwt["body"]
        aud = body.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and body.get("azp") != self._reg_row.client_id:
            raise LtiError("wrong_audience", "several audiences and azp is not the client id")
        return self

    def validate_message(self) -> ToolMessageLaunch:
        check_required_claims(self._jwt["body"])
        return self

    def validate_nonce(self) -> ToolMessageLaunch:
        assert self._login_state is not None
        nonce = self._jwt["body"].get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise LtiError("missing_nonce", "no nonce claim")
        if not hmac.compare_digest(nonce, self._login_state.nonce):
            raise LtiError("bad_nonce", "nonce differs from the login's")
        return self

    def validate_deployment(self) -> ToolMessageLaunch:
        assert self._reg_row is not None
        body: dict[str, Any] = dict(self._jwt["body"])
        deployment_id = str(body[c.DEPLOYMENT_ID])
        row = self._tool_config.deployment_row(self._reg_row, deployment_id)
        if row is not None and row.status == DEPLOYMENT_ACTIVE:
            self._dep_row = row
            return self
        if row is None:
            self.consume_state()
            self._db.add(
                Deployment(
                    registration_id=self._reg_row.id,
                    deployment_id=deployment_id,
                    status=DEPLOYMENT_ACTIVE if self._reg_row.auto_approve else DEPLOYMENT_PENDING,
                )
            )
            try:
                self._db.commit()
            except IntegrityError:
                self._db.rollback()  # another process recorded it first
            row = self._tool_config.deployment_row(self._reg_row, deployment_id)
            if row is not None and row.status == DEPLOYMENT_ACTIVE:
                self._dep_row = row
                return self
        else:
            self.consume_state()
        raise PendingDeployment(self._reg_row.issuer, self._reg_row.client_id, deployment_id)

    def consume_state(self) -> ToolMessageLaunch:
        if self._login_state is None:
            return self
        if not self._states.consume(self._login_state.state):
            raise LtiError("launch_replayed", "this state was already used", status=409)
        self._login_state = None
        return self

    # -- output ----------------------------------------------------------------------

    def launch_context(self, fallback_locale: str) -> LaunchContext:
        """The validated launch as a :class:`LaunchContext` (ids of rows not yet set)."""
        assert self._validated and self._reg_row is not None and self._dep_row is not None
        return build_context(
            self._jwt["body"],
            launch_id=self._launch_id,
            registration=self._reg_row,
            deployment=self._dep_row,
            fallback_locale=fallback_locale,
        )


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, not yet verified (only to find the key).

    PyJWT checks base64url input one character at a time, which made three parses per
    launch cost more than the signature; the one verified decode still goes through it.
    Raises :class:`LtiError` ``invalid_jwt``.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise LtiError("invalid_jwt", "id_token is not a JWT: it needs three segments")
    try:
        header, body = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, UnicodeError) as exc:
        raise LtiError("invalid_jwt", f"id_token is not a JWT: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise LtiError("invalid_jwt", "id_token header or body is not an object")
    return header, body


def check_required_claims(body: Mapping[str, Any]) -> None:
    """Raise :class:`LtiError` with the specific code of the first missing or bad claim."""
    if c.VERSION not in body:
        raise LtiError("missing_version", "no LTI version claim")
    if body[c.VERSION] != "1.3.0":
        raise LtiError("wrong_version", f"LTI version {body[c.VERSION]!r}, expected 1.3.0")
    message_type = body.get(c.MESSAGE_TYPE)
    if not message_type:
        raise LtiError("missing_message_type", "no message_type claim")
    if message_type not in c.SUPPORTED_MESSAGES:
        raise LtiError("unsupported_message_type", f"message_type {message_type!r}")
    if c.ROLES not in body:
        raise LtiError("missing_roles", "no roles claim")
    if not isinstance(body[c.ROLES], list):
        raise LtiError("invalid_roles", "roles claim is not a list")
    deployment_id = body.get(c.DEPLOYMENT_ID)
    if not isinstance(deployment_id, str | int) or deployment_id == "":
        raise LtiError("missing_deployment_id", "no deployment_id claim")
    sub = body.get("sub")
    if not isinstance(sub, str | int) or sub == "":
        raise LtiError("missing_sub", "no sub claim (anonymous launches are not supported)")
    for name in (c.CONTEXT, c.CUSTOM, c.LAUNCH_PRESENTATION, c.AGS_ENDPOINT, c.NRPS):
        if name in body and not isinstance(body[name], dict):
            raise LtiError("invalid_claim", f"{name} is not an object")
    if message_type == c.RESOURCE_LINK_REQUEST:
        link = body.get(c.RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise LtiError("missing_resource_link_id", "no resource_link.id claim")
    else:
        settings = body.get(c.DEEP_LINKING_SETTINGS)
        if not isinstance(settings, dict) or not settings.get("deep_link_return_url"):
            raise LtiError("missing_deep_linking_settings", "no deep_link_return_url")
        accept = settings.get("accept_types")
        if not isinstance(accept, list) or "ltiResourceLink" not in accept:
            raise LtiError("deep_linking_types", "the platform does not accept ltiResourceLink")


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) != "" else None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def build_context(
    body: Mapping[str, Any],
    *,
    launch_id: str,
    registration: RegistrationInfo,
    deployment: DeploymentInfo,
    fallback_locale: str,
) -> LaunchContext:
    """Normalise validated claims; claim URLs stop here."""
    context = body.get(c.CONTEXT) or {}
    link = body.get(c.RESOURCE_LINK) or {}
    presentation = body.get(c.LAUNCH_PRESENTATION) or {}
    custom_raw = body.get(c.CUSTOM) or {}
    ags_raw = body.get(c.AGS_ENDPOINT)
    nrps_raw = body.get(c.NRPS) or {}
    dl_raw = body.get(c.DEEP_LINKING_SETTINGS)
    locale = (
        normalize_locale(_str(presentation.get("locale")))
        or normalize_locale(_str(body.get("locale")))
        or fallback_locale
    )
    deep_linking = None
    if body.get(c.MESSAGE_TYPE) == c.DEEP_LINKING_REQUEST and isinstance(dl_raw, dict):
        deep_linking = DeepLinkingSettings(
            return_url=str(dl_raw["deep_link_return_url"]),
            accept_types=_strs(dl_raw.get("accept_types")),
            accept_multiple=bool(dl_raw.get("accept_multiple", False)),
            accept_presentation_document_targets=_strs(
                dl_raw.get("accept_presentation_document_targets")
            ),
            auto_create=bool(dl_raw.get("auto_create", False)),
            title=_str(dl_raw.get("title")),
            text=_str(dl_raw.get("text")),
            data=_str(dl_raw.get("data")),
        )
    ags = None
    if isinstance(ags_raw, dict):
        ags = AgsEndpoint(
            scopes=_strs(ags_raw.get("scope")),
            lineitems_url=_str(ags_raw.get("lineitems")),
            lineitem_url=_str(ags_raw.get("lineitem")),
        )
    lti_roles = _strs(body.get(c.ROLES))
    return LaunchContext(
        launch_id=launch_id,
        message_type=DEEP_LINKING
        if body.get(c.MESSAGE_TYPE) == c.DEEP_LINKING_REQUEST
        else RESOURCE_LINK,
        issuer=registration.issuer,
        client_id=registration.client_id,
        deployment_id=deployment.deployment_id,
        sub=str(body["sub"]),
        roles=map_roles(lti_roles),
        lti_roles=lti_roles,
        locale=locale,
        registration_pk=registration.id,
        deployment_pk=deployment.id,
        organization_pk=deployment.organization_id,
        name=_str(body.get("name")),
        given_name=_str(body.get("given_name")),
        family_name=_str(body.get("family_name")),
        email=_str(body.get("email")),
        context_id=_str(context.get("id")) if isinstance(context, dict) else None,
        context_label=_str(context.get("label")) if isinstance(context, dict) else None,
        context_title=_str(context.get("title")) if isinstance(context, dict) else None,
        resource_link_id=_str(link.get("id")) if isinstance(link, dict) else None,
        resource_link_title=_str(link.get("title")) if isinstance(link, dict) else None,
        custom={str(k).lower(): str(v) for k, v in custom_raw.items() if v is not None},
        ags=ags,
        nrps_url=_str(nrps_raw.get("context_memberships_url")),
        deep_linking=deep_linking,
        return_url=_str(presentation.get("return_url")),
    )
