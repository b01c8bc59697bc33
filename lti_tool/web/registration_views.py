"""/lti/register: LTI Dynamic Registration, opened by the platform's administrator."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template, request

from lti_tool.db import request_session
from lti_tool.domain.urls import origin_of, platform_url_problem
from lti_tool.lti import LtiError
from lti_tool.lti.registration import DynamicRegistrar
from lti_tool.services.platforms import (
    PlatformSpec,
    add_platform,
    invitation_is_usable,
    use_invitation,
)

from .app_context import lti_tool, rate_limiter, settings
from .security import allow_form_action, allow_framing_by, rate_limited

bp = Blueprint("registration", __name__, url_prefix="/lti")


def _registrar() -> DynamicRegistrar:
    s = settings()
    return DynamicRegistrar(s.base_url, s.secret_key, lti_tool().http)


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response:
    values = request.values
    configuration_url = str(values.get("openid_configuration", ""))
    # Refusals must be visible in the platform's registration dialog too.
    if platform_url_problem(configuration_url) is None:
        allow_framing_by(origin_of(configuration_url))
    if rate_limited(rate_limiter(), "register", max(10, settings().rate_limit_per_minute // 4)):
        raise LtiError("rate_limited", "registration rate limit", status=429)
    registration_token = str(values.get("registration_token", ""))
    invite = str(values.get("invite", ""))
    session = request_session()
    if not settings().registration_open and not invitation_is_usable(session, invite):
        raise LtiError("registration_closed", "no valid invitation", status=403)
    registrar = _registrar()
    configuration = registrar.fetch_configuration(configuration_url)
    allow_framing_by(configuration.origin)
    if request.method == "GET":
        allow_form_action(settings().base_url)
        return make_response(
            render_template(
                "lti/register_confirm.html",
                configuration=configuration,
                openid_configuration=configuration_url,
                registration_token=registration_token,
                invite=invite,
                confirmation=registrar.confirmation_token(configuration_url, registration_token),
            )
        )
    registrar.check_confirmation(
        str(values.get("confirmation", "")), configuration_url, registration_token
    )
    if not settings().registration_open and not use_invitation(session, invite):
        raise LtiError("registration_closed", "invitation already used", status=403)
    registered = registrar.register(configuration, registration_token)
    conf = registered.configuration
    add_platform(
        session,
        PlatformSpec(
            issuer=conf.issuer,
            client_id=registered.client_id,
            auth_login_url=conf.authorization_endpoint,
            auth_token_url=conf.token_endpoint,
            key_set_url=conf.jwks_uri,
            auth_audience=conf.token_audience,
            deployment_ids=(registered.deployment_id,) if registered.deployment_id else (),
            name=conf.platform_name,
            frame_origins=(conf.origin,),
            source="dynamic",
            product_family=conf.product_family,
        ),
    )
    return make_response(render_template("lti/register_done.html", configuration=conf))
