"""Deep Linking: a mentor picks what to place; the tool answers the platform."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, make_response, render_template, request
from flask_babel import gettext as _

from lti_tool.db import request_session
from lti_tool.lti import FORM_FIELD, ResourceLinkItem

from .app_context import lti_tool, settings
from .errors import render_error
from .lti_views import resume_launch
from .security import allow_form_action

bp = Blueprint("deep_linking", __name__, url_prefix="/lti")

#: What can be placed before the content catalog exists: the program's home in the course.
OVERVIEW = "overview"


@bp.post("/deep-linking")
def respond() -> Response:
    launch = resume_launch()
    if launch.deep_linking is None or not launch.is_mentor:
        # Only mentors/editors of a deep-linking launch place content; nothing is sent.
        return render_error(403, "forbidden")
    chosen = request.form.getlist("item")
    if chosen != [OVERVIEW]:
        token = lti_tool().tokens.token_for(launch.launch_id)
        return make_response(
            render_template(
                "lti/deep_linking.html",
                launch=launch,
                launch_token=token,
                token_field=FORM_FIELD,
                error=_("Choose the item to add to your course."),
            ),
            400,
        )
    item = ResourceLinkItem(
        title=_("DATAide: program overview"),
        url=settings().base_url + "/lti/launch",
        # Lower-case keys that live in LMS courses for years: never rename them.
        custom={"dataide_dl": str(uuid.uuid4())},
    )
    return_url, jwt_value = lti_tool().deep_linking_response(request_session(), launch, [item])
    allow_form_action(return_url)
    return make_response(
        render_template("lti/deep_linking_return.html", return_url=return_url, jwt=jwt_value)
    )
