"""Every refusal becomes a page in the person's language (or JSON for API clients).

Codes come from :class:`lti_tool.lti.LtiError`; the table says what happened and what to do.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from lti_tool.logs import log_event
from lti_tool.lti import LtiError, PendingDeployment

log = logging.getLogger("lti_tool.web")

_RELAUNCH = _l("Go back to your course and open the activity again.")
_ADMIN = _l(
    "Ask your platform administrator to check the tool's registration "
    "(see the DATAide tool's home page for the URLs)."
)
_BAD_LAUNCH = _l("The launch message from your learning platform was refused.")

#: code -> (title, what happened, what to do)
MESSAGES: dict[str, tuple[object, object, object]] = {
    "login_missing_iss": (
        _l("Incomplete login request"),
        _l("The platform did not say who it is (no iss parameter)."),
        _ADMIN,
    ),
    "login_missing_login_hint": (
        _l("Incomplete login request"),
        _l("The platform sent no login_hint parameter."),
        _ADMIN,
    ),
    "login_missing_client_id": (
        _l("Incomplete login request"),
        _l("This platform has several registrations of the tool and sent no client_id."),
        _ADMIN,
    ),
    "login_bad_target": (
        _l("Wrong tool address"),
        _l("The platform asked to launch an address that is not this tool."),
        _ADMIN,
    ),
    "unknown_registration": (
        _l("Platform not registered"),
        _l("This learning platform (or this client id) is not registered with the tool."),
        _ADMIN,
    ),
    "insecure_url": (
        _l("Insecure platform address"),
        _l("The platform's registered addresses must use https."),
        _ADMIN,
    ),
    "missing_state": (_l("Launch refused"), _BAD_LAUNCH, _RELAUNCH),
    "missing_id_token": (_l("Launch refused"), _BAD_LAUNCH, _RELAUNCH),
    "unknown_state": (
        _l("This launch has expired"),
        _l("Too much time passed between the start of the launch and its end."),
        _RELAUNCH,
    ),
    "launch_replayed": (
        _l("This launch was already used"),
        _l("A launch can only be used once, for example it cannot be reloaded or resent."),
        _RELAUNCH,
    ),
    "state_mismatch": (
        _l("Launch refused"),
        _l("This launch was started in another browser or window."),
        _RELAUNCH,
    ),
    "cookies_blocked": (
        _l("Your browser blocked the launch"),
        _l("Your browser does not let the tool keep the launch inside the course page."),
        _l("Open the tool in a new window to continue."),
    ),
    "invalid_jwt": (
        _l("Launch refused"),
        _l("The launch message is not a valid LTI 1.3 token."),
        _ADMIN,
    ),
    "bad_algorithm": (
        _l("Launch refused"),
        _l("The launch message is not signed with RS256."),
        _ADMIN,
    ),
    "missing_kid": (
        _l("Launch refused"),
        _l("The launch message does not say which platform key signed it (no kid)."),
        _ADMIN,
    ),
    "unknown_kid": (
        _l("Launch refused"),
        _l("The launch message was signed with a key the platform does not publish."),
        _ADMIN,
    ),
    "bad_jwks": (_l("Launch refused"), _l("The platform's public key set is not valid."), _ADMIN),
    "bad_signature": (
        _l("Launch refused"),
        _l("The launch message's signature is not valid."),
        _ADMIN,
    ),
    "token_expired": (
        _l("This launch has expired"),
        _l("The launch message is too old, or the platform's clock is wrong."),
        _RELAUNCH,
    ),
    "token_not_yet_valid": (
        _l("Launch refused"),
        _l("The launch message is dated in the future: the platform's clock is ahead."),
        _ADMIN,
    ),
    "invalid_timestamps": (
        _l("Launch refused"),
        _l("The launch message has no valid issue or expiry time."),
        _ADMIN,
    ),
    "wrong_audience": (
        _l("Launch refused"),
        _l("The launch message is meant for another tool."),
        _ADMIN,
    ),
    "wrong_issuer": (
        _l("Launch refused"),
        _l("The launch message comes from another platform than the login."),
        _ADMIN,
    ),
    "missing_iss": (
        _l("Launch refused"),
        _l("The launch message does not name its platform."),
        _ADMIN,
    ),
    "missing_aud": (_l("Launch refused"), _l("The launch message names no client id."), _ADMIN),
    "missing_version": (_l("Launch refused"), _l("The launch message has no LTI version."), _ADMIN),
    "wrong_version": (_l("Launch refused"), _l("Only LTI version 1.3.0 is supported."), _ADMIN),
    "missing_message_type": (
        _l("Launch refused"),
        _l("The launch message has no message type."),
        _ADMIN,
    ),
    "unsupported_message_type": (
        _l("Launch refused"),
        _l("The tool supports resource link and deep linking launches only."),
        _ADMIN,
    ),
    "missing_roles": (_l("Launch refused"), _l("The launch message has no roles claim."), _ADMIN),
    "invalid_roles": (
        _l("Launch refused"),
        _l("The launch message's roles are not a list."),
        _ADMIN,
    ),
    "missing_deployment_id": (
        _l("Launch refused"),
        _l("The launch message has no deployment id."),
        _ADMIN,
    ),
    "missing_sub": (
        _l("Launch refused"),
        _l(
            "The launch message does not identify the user (no sub); "
            "anonymous launches are not supported."
        ),
        _ADMIN,
    ),
    "invalid_claim": (
        _l("Launch refused"),
        _l("A claim of the launch message has the wrong shape."),
        _ADMIN,
    ),
    "missing_resource_link_id": (
        _l("Launch refused"),
        _l("The launch message does not say which activity was opened (no resource link id)."),
        _ADMIN,
    ),
    "missing_deep_linking_settings": (
        _l("Launch refused"),
        _l("The content selection request has no return address."),
        _ADMIN,
    ),
    "deep_linking_types": (
        _l("Launch refused"),
        _l("The platform does not accept LTI links as content."),
        _ADMIN,
    ),
    "missing_nonce": (_l("Launch refused"), _l("The launch message has no nonce."), _ADMIN),
    "bad_nonce": (
        _l("Launch refused"),
        _l("The launch message does not match its login."),
        _RELAUNCH,
    ),
    "deployment_pending": (
        _l("This deployment is waiting for approval"),
        _l(
            "The platform is registered, but this deployment of the tool has not been approved yet."
        ),
        _l(
            "An administrator of the DATAide tool must approve it with `lti-tool platform approve`."
        ),
    ),
    "platform_unreachable": (
        _l("The platform did not answer"),
        _l("The tool could not reach your learning platform to check the launch."),
        _l("Try again in a few minutes; if it persists, tell your platform administrator."),
    ),
    "platform_http_error": (
        _l("The platform answered with an error"),
        _l("An address of the platform (public keys or registration) answered with an error."),
        _ADMIN,
    ),
    "platform_bad_json": (
        _l("The platform's answer is not usable"),
        _l("An address of the platform (public keys or registration) did not return JSON."),
        _ADMIN,
    ),
    "platform_response_too_large": (
        _l("The platform's answer is not usable"),
        _l("The platform's answer was too large."),
        _ADMIN,
    ),
    "service_token_refused": (
        _l("The platform refused access"),
        _l("The platform did not give the tool access to its grade or roster services."),
        _ADMIN,
    ),
    "not_deep_linking": (
        _l("Nothing to send back"),
        _l("This page was not opened from the platform's content picker."),
        _l("Add DATAide content from your course's activity picker."),
    ),
    "deep_linking_single": (
        _l("Only one item can be added"),
        _l("Your platform accepts a single item at a time."),
        _l("Choose one item, then repeat for the others."),
    ),
    "launch_token_missing": (
        _l("Your session has ended"),
        _l("This page no longer knows your launch."),
        _RELAUNCH,
    ),
    "launch_token_invalid": (
        _l("Your session has ended"),
        _l("This page no longer knows your launch."),
        _RELAUNCH,
    ),
    "launch_token_expired": (
        _l("Your session has expired"),
        _l("You were inactive for too long. Nothing you saved is lost."),
        _RELAUNCH,
    ),
    "rate_limited": (
        _l("Too many requests"),
        _l("Too many requests came from your network in a short time."),
        _l("Wait a minute and try again."),
    ),
    "registration_closed": (
        _l("Registration needs an invitation"),
        _l("This DATAide server only accepts platforms invited by its administrators."),
        _l("Ask the DATAide team for a one-time registration address (lti-tool platform invite)."),
    ),
    "registration_missing_configuration": (
        _l("Incomplete registration request"),
        _l("The platform did not give its configuration address (openid_configuration)."),
        _l("Start the registration from your platform's tool management page."),
    ),
    "registration_bad_configuration": (
        _l("Registration refused"),
        _l("The platform's configuration is incomplete or not valid."),
        _ADMIN,
    ),
    "registration_issuer_mismatch": (
        _l("Registration refused"),
        _l("The platform's configuration address does not belong to the platform it names."),
        _ADMIN,
    ),
    "registration_form_expired": (
        _l("This registration form has expired"),
        _l("The confirmation form is too old or was changed."),
        _l("Start the registration again from your platform."),
    ),
    "registration_refused": (
        _l("The platform refused the registration"),
        _l("The platform's registration endpoint did not accept the tool."),
        _l("Start the registration again; if it persists, check the platform's logs."),
    ),
    "item_unknown": (
        _l("This activity names unknown content"),
        _l("The DATAide item this activity points to does not exist on this server."),
        _l("Tell your course's teacher: the activity must be added again from the content picker."),
    ),
    "item_not_published": (
        _l("This content is not available"),
        _l("No published version of this DATAide item matches what the activity asks for."),
        _l("Tell your course's teacher; the DATAide team can publish the content."),
    ),
    "pin_invalid": (
        _l("This activity's version is not valid"),
        _l("The activity asks for a version of DATAide content that cannot exist."),
        _l("Tell your course's teacher: the activity must be added again from the content picker."),
    ),
    "item_not_placed": (
        _l("No DATAide content here"),
        _l("This activity is not linked to a DATAide item."),
        _l("Your teacher can choose one with the platform's content picker."),
    ),
    "question_unknown": (
        _l("Unknown question"),
        _l("The answer sent names a question this module does not have."),
        _l("Go back to the module and answer again."),
    ),
    "retry_unknown": (
        _l("Nothing to retry"),
        _l("The grade to send again was not found."),
        _l("Go back to the class view and try again."),
    ),
    "forbidden": (
        _l("Not allowed"),
        _l("Your role in this course does not give access to this page."),
        _l("If you think this is wrong, ask your course's teacher."),
    ),
}

_GENERIC = {
    400: (_l("Bad request"), _l("The request could not be understood."), _RELAUNCH),
    404: (_l("Page not found"), _l("There is no page at this address."), _l("Check the address.")),
    405: (
        _l("Not allowed"),
        _l("This address does not accept this kind of request."),
        _l("Open the activity from your course."),
    ),
    413: (_l("Too large"), _l("What you sent is too large."), _l("Send something smaller.")),
    429: MESSAGES["rate_limited"],
    500: (
        _l("Something went wrong"),
        _l("The tool hit an unexpected error. Nothing you saved is lost."),
        _l("Try again; if it persists, tell your course's teacher."),
    ),
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def render_error(status: int, code: str, **context: object) -> Response:
    title, what, todo = MESSAGES.get(code) or _GENERIC.get(status) or _GENERIC[400]
    if wants_json():
        resp = jsonify({"error": code, "message": str(what), "what_to_do": str(todo)})
    else:
        resp = Response(
            render_template(
                "error.html", status=status, code=code, title=title, what=what, todo=todo, **context
            )
        )
    resp.status_code = status
    return resp


def init_errors(app: Flask) -> None:
    @app.errorhandler(LtiError)
    def _lti_error(exc: LtiError) -> Response:
        log_event(
            log,
            "lti_refused",
            logging.WARNING,
            code=exc.code,
            detail=exc.detail,
            path=request.path,
            pending=isinstance(exc, PendingDeployment),
        )
        kept: list[str] = []
        if exc.code in ("launch_token_expired", "launch_token_invalid"):
            # What the person typed is shown back, so a relaunch loses nothing.
            kept = [v[:2000] for v in request.form.getlist("answer") if v.strip()]
        return render_error(exc.status, exc.code, kept=kept)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return render_error(exc.code or 500, f"http_{exc.code}")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"fields": {"event": "error", "path": request.path}})
        return render_error(500, "internal_error")
