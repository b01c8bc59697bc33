"""Deep Linking: a mentor picks catalog items to place; the tool answers the platform."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, current_app, make_response, render_template, request
from flask_babel import gettext as _

from lti_tool.db import request_session
from lti_tool.domain.launch import LaunchContext
from lti_tool.lti import FORM_FIELD, LineItemSpec, ResourceLinkItem
from lti_tool.services.picker import Choice, choose, filter_items, picker_items
from lti_tool.services.published import PublishedContent

from .app_context import lti_tool, settings
from .errors import render_error
from .lti_views import resume_launch
from .security import allow_form_action

bp = Blueprint("deep_linking", __name__, url_prefix="/lti")

#: The program's home in the course (no grade), placeable beside the catalog items.
OVERVIEW = "overview"


def _published() -> PublishedContent:
    return current_app.extensions["dataide_published"]


def render_picker(
    launch: LaunchContext, *, error: str | None = None, status: int = 200
) -> Response:
    """The picker page, filtered by the form's ``q``, ``kind`` and ``lang``."""
    query = request.form.get("q", "").strip()[:200]
    kind = request.form.get("kind", "")
    lang = request.form.get("lang", "")
    every = picker_items(request_session(), _published())
    shown = filter_items(every, query, kind, lang)
    selected = set(request.form.getlist("item"))
    assert launch.deep_linking is not None
    return make_response(
        render_template(
            "lti/deep_linking.html",
            launch=launch,
            launch_token=lti_tool().tokens.token_for(launch.launch_id),
            token_field=FORM_FIELD,
            items=shown,
            total=len(every),
            query=query,
            kind=kind,
            lang=lang,
            selected=selected,
            pins={
                k.removeprefix("pin-"): v for k, v in request.form.items() if k.startswith("pin-")
            },
            multiple=launch.deep_linking.accept_multiple,
            error=error,
        ),
        status,
    )


def _resource_item(choice: Choice) -> ResourceLinkItem:
    return ResourceLinkItem(
        title=choice.title,
        url=settings().base_url + "/lti/launch",
        custom=choice.custom,
        text=choice.text,
        line_item=LineItemSpec(
            score_maximum=choice.item.score_maximum,
            label=choice.label,
            resource_id=choice.resource_id,
            tag=choice.item.tag,
        ),
    )


@bp.post("/deep-linking")
def respond() -> Response:
    launch = resume_launch()
    if launch.deep_linking is None or not launch.is_mentor:
        # Only mentors/editors of a deep-linking launch place content; nothing is sent.
        return render_error(403, "forbidden")
    if request.form.get("action") == "filter":
        return render_picker(launch)
    chosen = list(dict.fromkeys(request.form.getlist("item")))
    if not chosen:
        return render_picker(
            launch, error=_("Choose at least one item to add to your course."), status=400
        )
    if len(chosen) > 1 and not launch.deep_linking.accept_multiple:
        return render_picker(
            launch,
            error=_("Your platform accepts one item at a time: choose only one."),
            status=400,
        )
    by_id = {item.id: item for item in picker_items(request_session(), _published())}
    items: list[ResourceLinkItem] = []
    for item_id in chosen:
        if item_id == OVERVIEW:
            items.append(
                ResourceLinkItem(
                    title=_("DATAide: program overview"),
                    url=settings().base_url + "/lti/launch",
                    custom={"dataide_dl": str(uuid.uuid4())},
                )
            )
            continue
        item = by_id.get(item_id)
        pin = request.form.get(f"pin-{item_id}", "") or (str(item.version.major) if item else "")
        choice = choose(item, pin, launch.locale) if item is not None else None
        if choice is None:
            return render_picker(
                launch,
                error=_(
                    "“%(id)s” cannot be added at this version: choose it again from the list.",
                    id=item_id,
                ),
                status=400,
            )
        items.append(_resource_item(choice))
    return_url, jwt_value = lti_tool().deep_linking_response(request_session(), launch, items)
    allow_form_action(return_url)
    return make_response(
        render_template(
            "lti/deep_linking_return.html",
            return_url=return_url,
            jwt=jwt_value,
            titles=[i.title for i in items],
        )
    )
