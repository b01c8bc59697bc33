"""Placed content inside the LMS frame: a learner's module pages, a mentor's class view.

Every request carries the launch token (form field); the placement is always the one of
the launch's own resource link, so nobody reaches another course's work.
"""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    render_template,
    request,
    send_file,
)
from markupsafe import Markup

from lti_tool.content.model import Experiment, Module
from lti_tool.content.render import RenderedBody
from lti_tool.content.render_cache import RenderCache
from lti_tool.db import request_session
from lti_tool.domain.launch import LaunchContext
from lti_tool.domain.progress import EMPTY, Verdict, check_answer
from lti_tool.lti import FORM_FIELD, LtiError
from lti_tool.services import learning
from lti_tool.services.class_view import class_view
from lti_tool.services.grades import retry_row
from lti_tool.services.placements import (
    PlacementError,
    PlacementView,
    move_placement,
    placement_for_launch,
    resolve_version,
)
from lti_tool.services.published import PublishedContent

from .app_context import lti_tool, settings, store
from .errors import render_error
from .lti_views import resume_launch

bp = Blueprint("learn", __name__)

_MARK = re.compile(r"<!--dataide-question:([a-z0-9-]+)-->")


def published() -> PublishedContent:
    return current_app.extensions["dataide_published"]


def render_cache() -> RenderCache:
    return current_app.extensions["dataide_learner_render_cache"]


def question_marker(_module: Module, qid: str, _lang: str) -> str:
    """Self-check blocks become markers in the cached body; each request fills them in
    with the learner's own state."""
    return f"<!--dataide-question:{qid}-->"


def experiment_card(ref: str, lang: str) -> str:
    item_id = ref.split("@", 1)[0]
    experiment = current_app.extensions["dataide_catalog"].experiments.get(item_id)
    return render_template(
        "content/experiment_card.html", experiment=experiment, ref=ref, lang=lang, href=None
    )


def media_url(module: Module, path: str) -> str:
    rel = path.removeprefix("./")
    return f"{settings().base_url}/content/media/{module.id}/{module.version}/{rel}"


def _token(launch: LaunchContext) -> str:
    return lti_tool().tokens.token_for(launch.launch_id)


def _page(template: str, launch: LaunchContext, status: int = 200, **context: Any) -> Response:
    return make_response(
        render_template(
            template,
            launch=launch,
            launch_token=_token(launch),
            token_field=FORM_FIELD,
            **context,
        ),
        status,
    )


def placement_or_error(launch: LaunchContext) -> PlacementView | Response | None:
    """The launch's placement; None for a link without DATAide content; an error page
    for keys that name nothing published."""
    try:
        return placement_for_launch(request_session(), published(), launch)
    except PlacementError as exc:
        return render_error(404, exc.code)


def render_placement(launch: LaunchContext, placement: PlacementView) -> Response:
    """The launch's page for a placed item: class view, module page or experiment."""
    if launch.is_mentor:
        return _class_page(launch, placement)
    if placement.kind == "experiment":
        return _experiment_page(launch, placement)
    return _module_page(launch, placement)


def _module_page(
    launch: LaunchContext,
    placement: PlacementView,
    section: str | None = None,
    answered: tuple[str, Verdict, list[str]] | None = None,
    state: learning.ModuleState | None = None,
    just_completed: bool = False,
    status: int = 200,
) -> Response:
    try:
        if state is None and launch.is_mentor:
            state = learning.preview_module(request_session(), published(), placement, section)
        elif state is None:
            state = learning.open_module(request_session(), published(), launch, placement, section)
    except PlacementError as exc:
        return render_error(404, exc.code)
    module = state.module
    lang = launch.locale if launch.locale in module.languages else "fr-CA"
    body: RenderedBody = render_cache().body(module, lang)
    section_html = dict(body.sections).get(state.section, "")
    titles = {h.id: h.title for h in body.headings}
    ids = [s.id for s in module.sections]
    index = ids.index(state.section) if state.section in ids else 0

    def fill(match: re.Match[str]) -> str:
        qid = match.group(1)
        question = next((q for q in module.questions if q.id == qid), None)
        verdict = values = None
        if answered is not None and answered[0] == qid:
            verdict, values = answered[1], answered[2]
        return render_template(
            "learn/_question.html",
            module=module,
            question=question,
            qid=qid,
            lang=lang,
            record=state.progress.answers.get(qid),
            verdict=verdict,
            values=values or [],
            section=state.section,
            launch_token=_token(launch),
            token_field=FORM_FIELD,
        )

    html = Markup(_MARK.sub(fill, section_html))  # noqa: S704 - sanitised body + our templates
    return _page(
        "learn/module.html",
        launch,
        status,
        module=module,
        lang=lang,
        state=state,
        section_html=html,
        titles=titles,
        index=index,
        section_ids=ids,
        just_completed=just_completed,
        preview=launch.is_mentor,
    )


def _experiment_page(launch: LaunchContext, placement: PlacementView) -> Response:
    session = request_session()
    try:
        serving = resolve_version(session, published(), placement)
    except PlacementError as exc:
        return render_error(404, exc.code)
    experiment = published().item(session, placement.item_id, str(serving.version))
    if not isinstance(experiment, Experiment):
        return render_error(404, "item_not_published")
    lang = launch.locale if launch.locale in experiment.languages else "fr-CA"
    return _page(
        "learn/experiment.html",
        launch,
        experiment=experiment,
        lang=lang,
        instructions=render_cache().markdown(
            ("x", experiment.id, str(experiment.version), lang),
            experiment.instructions.get(lang),
            lang,
        ),
        item_link=_item_title,
    )


def _item_title(ref: str, lang: str) -> dict[str, Any]:
    """A referenced item's title, without a link: inside the LMS, other items are other
    activities of the course."""
    item = current_app.extensions["dataide_catalog"].item(ref.split("@", 1)[0])
    title = item.title.get(lang) if item is not None and hasattr(item, "title") else None
    return {"ref": ref, "title": title, "href": None}


def _class_page(
    launch: LaunchContext,
    placement: PlacementView,
    *,
    refresh: bool = False,
    message: str | None = None,
    status: int = 200,
) -> Response:
    try:
        view = class_view(
            request_session(),
            store(),
            published(),
            lti_tool().nrps,
            launch,
            placement,
            settings().roster_cache_seconds,
            refresh=refresh,
        )
    except PlacementError as exc:
        return render_error(404, exc.code)
    return _page("learn/class.html", launch, status, view=view, message=message)


def _launch_and_placement() -> tuple[LaunchContext, PlacementView]:
    """The launch of an in-frame request and its placement; raises what the error
    handlers turn into pages."""
    launch = resume_launch()
    placement = placement_for_launch(request_session(), published(), launch)
    if placement is None:
        raise PlacementError("item_not_placed")
    return launch, placement


def _mentor() -> tuple[LaunchContext, PlacementView]:
    launch, placement = _launch_and_placement()
    if not launch.is_mentor:
        raise LtiError("forbidden", "mentor action by a learner", status=403)
    return launch, placement


@bp.errorhandler(PlacementError)
def _placement_error(exc: PlacementError) -> Response:
    return render_error(404, exc.code)


@bp.post("/learn/section")
def section() -> Response:
    launch, placement = _launch_and_placement()
    return _module_page(launch, placement, section=request.form.get("section") or None)


@bp.post("/learn/answer")
def answer() -> Response:
    launch, placement = _launch_and_placement()
    qid = request.form.get("question", "")
    values = [v[:500] for v in request.form.getlist("answer")][:20]
    session = request_session()
    if launch.is_mentor:
        # A mentor trying the module: feedback only, nothing saved or graded.
        state = learning.preview_module(
            session, published(), placement, request.form.get("section")
        )
        question = next((q for q in state.module.questions if q.id == qid), None)
        if question is None:
            return render_error(400, "question_unknown")
        verdict = check_answer(question, values, launch.locale)
        return _module_page(launch, placement, state=state, answered=(qid, verdict, values))
    try:
        outcome = learning.answer_question(session, published(), launch, placement, qid, values)
    except KeyError:
        return render_error(400, "question_unknown")
    if outcome.just_completed:
        current_app.extensions["dataide_grade_wake"]()
    return _module_page(
        launch,
        placement,
        state=outcome.state,
        answered=(qid, outcome.verdict, values),
        just_completed=outcome.just_completed,
        status=400 if outcome.verdict.result == EMPTY else 200,
    )


@bp.post("/learn/class")
def class_page() -> Response:
    return _class_page(*_mentor(), refresh=request.form.get("refresh") == "1")


@bp.post("/learn/preview")
def preview() -> Response:
    launch, placement = _mentor()
    if placement.kind == "experiment":
        return _experiment_page(launch, placement)
    return _module_page(launch, placement, section=request.form.get("section") or None)


@bp.post("/learn/retry")
def retry() -> Response:
    launch, placement = _mentor()
    try:
        row_pk = int(request.form.get("row", ""))
    except ValueError:
        return render_error(400, "retry_unknown")
    copy = retry_row(request_session(), row_pk, placement.resource_link_pk)
    if copy is None:
        return _class_page(launch, placement, message="retry_refused", status=409)
    current_app.extensions["dataide_grade_wake"]()
    return _class_page(launch, placement, message="retry_queued")


@bp.post("/learn/move")
def move() -> Response:
    launch, placement = _mentor()
    try:
        placement = move_placement(
            request_session(), published(), placement.pk, request.form.get("pin", "")
        )
    except PlacementError as exc:
        return render_error(400, exc.code)
    published().forget_versions()
    return _class_page(launch, placement, message="moved")


@bp.get("/content/media/<item_id>/<version>/<path:rel>")
def media(item_id: str, version: str, rel: str) -> Response:
    """A published module's image (public: course material, addressed by version)."""
    session = request_session()
    if published().item(session, item_id, version) is None:
        return render_error(404, "http_404")
    path = published().media_file(item_id, version, rel)
    if path is None:
        return render_error(404, "http_404")
    response = send_file(path, max_age=86400)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if path.suffix.lower() == ".svg":
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
    return response
