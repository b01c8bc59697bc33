"""Content preview for authors: every module, experiment and badge of a working tree.

``create_preview_app(root)`` needs no database, no LTI registration and no secrets: it
reads the files under ``root`` (drafts included), reloads them when they change, and shows
the checker's diagnostics on every page. Pages use the tool's base template, security
headers and translations; the ``templates/content/`` partials they include are meant to
be reused by the learner pages.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape
from werkzeug.serving import WSGIRequestHandler

from lti_tool.content.model import BadgeClass, Catalog, Experiment, Item, Module
from lti_tool.content.render import RenderedBody
from lti_tool.content.render_cache import RenderCache
from lti_tool.content.versions import parse_reference
from lti_tool.domain.launch import DEFAULT_LOCALE, SUPPORTED_LOCALES
from lti_tool.services.preview import MediaFile, PreviewContent, Snapshot

from .errors import init_errors
from .i18n import BABEL_LOCALES, init_i18n
from .security import csp_nonce, init_security

bp = Blueprint("preview", __name__)

#: Served with every SVG: an image opened on its own can run no script and load nothing.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"

_PACKAGE = Path(__file__).resolve().parents[1]


def create_preview_app(content_root: Path) -> Flask:
    """The preview application for the content under ``content_root``."""
    app = Flask(
        "lti_tool",
        root_path=str(_PACKAGE),
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, SEND_FILE_MAX_AGE_DEFAULT=0)
    app.extensions["dataide_preview"] = _PreviewState(PreviewContent(content_root))
    # Pages before a launch may be framed by registered platforms; the preview has none.
    app.extensions["dataide_frame_origins"] = list

    # after_request functions run last-registered first: this one runs after the tool's
    # security headers and replaces the CSP of SVG files.
    @app.after_request
    def _svg_policy(response: Response) -> Response:
        if g.get("svg_response"):
            response.headers["Content-Security-Policy"] = SVG_CSP
        return response

    init_i18n(app)
    init_security(app)
    init_errors(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    init_content_templates(app)
    app.register_blueprint(bp)
    return app


class PreviewRequestHandler(WSGIRequestHandler):
    """The development server's handler, without a log line for each reload poll."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.path.split("?", 1)[0] == "/_fingerprint" and str(code) == "200":
            return
        super().log_request(code, size)


# -- state: the snapshot and its renderings -------------------------------------------


class _PreviewState:
    """The content, and the render caches of its current snapshot."""

    def __init__(self, content: PreviewContent) -> None:
        self.content = content
        self._lock = threading.Lock()
        self._fingerprint = ""
        self._cache: RenderCache | None = None

    def snapshot(self) -> tuple[Snapshot, RenderCache]:
        snap = self.content.current()
        with self._lock:
            if self._cache is None or self._fingerprint != snap.fingerprint:
                self._cache = RenderCache(
                    snap.result.catalog,
                    question_html=_question_html,
                    experiment_html=_experiment_html,
                    media_url=_media_url,
                )
                self._fingerprint = snap.fingerprint
            return snap, self._cache


def _state() -> _PreviewState:
    state: _PreviewState = current_app.extensions["dataide_preview"]
    return state


def _catalog() -> Catalog:
    return _state().snapshot()[0].result.catalog


# -- callbacks of the render cache (their HTML is cached per item, version, language) --


def _question_html(module: Module, qid: str, lang: str) -> str:
    question = next((q for q in module.questions if q.id == qid), None)
    with force_locale(BABEL_LOCALES[lang]):
        return render_template(
            "content/question.html",
            module=module,
            question=question,
            qid=qid,
            lang=lang,
            preview=True,
        )


def _experiment_html(ref: str, lang: str) -> str:
    item_id = ref.split("@", 1)[0]
    experiment = _catalog().experiments.get(item_id)
    with force_locale(BABEL_LOCALES[lang]):
        return render_template(
            "content/experiment_card.html",
            experiment=experiment,
            ref=ref,
            lang=lang,
            href=url_for("preview.experiment", item_id=item_id, lang=lang),
        )


def _media_url(module: Module, path: str) -> str:
    filename = path.removeprefix("./").removeprefix("media/")
    return url_for("preview.module_media", item_id=module.id, filename=filename)


# -- helpers for the templates --------------------------------------------------------


def _lang() -> str:
    return str(g.get("locale", DEFAULT_LOCALE))


@bp.before_request
def _choose_language() -> None:
    """``?lang=fr-CA|en`` chooses; French otherwise (never Accept-Language here)."""
    lang = request.args.get("lang")
    g.locale = lang if lang in SUPPORTED_LOCALES else DEFAULT_LOCALE


@bp.app_context_processor
def _preview_context() -> dict[str, Any]:
    if not request or request.blueprint != "preview":
        return {}
    lang = _lang()
    view_args = dict(request.view_args or {})
    endpoint = request.endpoint or "preview.index"
    other = "en" if lang == "fr-CA" else "fr-CA"
    return {
        "lang": lang,
        "switch_url": url_for(endpoint, **view_args, lang=other),
        "item_url": _item_url,
        "item_link": _item_link,
        "content_lang": _content_lang,
    }


def _item_url(item: Item, lang: str) -> str:
    endpoint = {"module": "preview.module", "experiment": "preview.experiment"}.get(
        item.kind, "preview.badge"
    )
    return url_for(endpoint, item_id=item.id, lang=lang)


def _item_link(ref: str, lang: str) -> dict[str, Any]:
    """What a reference points to: {ref, title, href} (title and href None when missing)."""
    parsed = parse_reference(ref)
    item_id = parsed.id if parsed else ref.split("@", 1)[0]
    item = _catalog().item(item_id)
    if item is None:
        return {"ref": ref, "title": None, "href": None}
    title = item.name if isinstance(item, BadgeClass) else item.title
    return {"ref": ref, "title": title.get(lang), "href": _item_url(item, lang)}


def _content_lang(item: Item, lang: str) -> str:
    """The language an item's text is shown in: ``lang`` when it has it, else French."""
    return lang if lang in item.languages else DEFAULT_LOCALE


def init_content_templates(app: Flask) -> None:
    """What the ``templates/content/`` partials need from the application."""
    app.jinja_env.filters["scrollable_tables"] = scrollable_tables


def scrollable_tables(rendered_html: str) -> Markup:
    """Rendered Markdown with each table in a region that scrolls sideways on a phone.

    The region is focusable and named, so keyboard users can scroll it too. The renderer
    emits bare ``<table>`` tags only (raw HTML never survives), so plain replacement is safe.
    """
    parts = str(rendered_html).split("<table>")
    out = [parts[0]]
    for number, rest in enumerate(parts[1:], start=1):
        label = escape(_("Table %(num)s", num=number))
        out.append(
            f'<div class="table-scroll" role="region" tabindex="0" aria-label="{label}">'
            f"<table>{rest.replace('</table>', '</table></div>', 1)}"
        )
    return Markup("".join(out))  # noqa: S704 - sanitised renderer output plus fixed markup


def _page(template: str, snap: Snapshot, **context: Any) -> Response:
    response = Response(
        render_template(
            template,
            snapshot=snap,
            diagnostics=snap.diagnostics,
            fingerprint=snap.fingerprint,
            **context,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# -- pages ----------------------------------------------------------------------------


@bp.get("/")
def index() -> Response:
    snap, _ = _state().snapshot()
    catalog = snap.result.catalog
    return _page(
        "preview/index.html",
        snap,
        modules=sorted(catalog.modules.values(), key=lambda m: m.id),
        experiments=sorted(catalog.experiments.values(), key=lambda x: x.id),
        badges=sorted(catalog.badges.values(), key=lambda b: b.id),
        issuer=catalog.issuer,
        snapshot_root=str(_state().content.root),
    )


@bp.get("/modules/<item_id>")
def module(item_id: str) -> Response:
    snap, cache = _state().snapshot()
    found = snap.result.catalog.modules.get(item_id)
    if found is None:
        abort(404)
    lang = _content_lang(found, _lang())
    body: RenderedBody | None = None
    body_error: str | None = None
    try:
        body = cache.module(found.id, lang)
    except (ValueError, AssertionError) as exc:
        body_error = str(exc) or "the body could not be rendered"
    # The linked experiment's card closes the page unless the body already shows it.
    linked_card = None
    if found.linked_experiment is not None and not (body and "experiment-card" in body.html):
        linked_card = Markup(_experiment_html(str(found.linked_experiment), lang))  # noqa: S704
    return _page(
        "preview/module.html",
        snap,
        module=found,
        body=body,
        body_error=body_error,
        linked_card=linked_card,
    )


@bp.get("/experiments/<item_id>")
def experiment(item_id: str) -> Response:
    snap, cache = _state().snapshot()
    found: Experiment | None = snap.result.catalog.experiments.get(item_id)
    if found is None:
        abort(404)
    lang = _content_lang(found, _lang())
    key = (found.id, str(found.version), lang)
    return _page(
        "preview/experiment.html",
        snap,
        experiment=found,
        instructions=cache.markdown(("x", *key), found.instructions.get(lang), lang),
    )


@bp.get("/badges/<item_id>")
def badge(item_id: str) -> Response:
    snap, cache = _state().snapshot()
    found: BadgeClass | None = snap.result.catalog.badges.get(item_id)
    if found is None:
        abort(404)
    lang = _content_lang(found, _lang())
    key = (found.id, str(found.version), lang)
    return _page(
        "preview/badge.html",
        snap,
        badge=found,
        issuer=snap.result.catalog.issuer,
        narrative=cache.markdown(("b", *key), found.narrative.get(lang), lang),
        image_url=url_for("preview.badge_image", item_id=found.id, filename=found.image_file),
    )


# -- files ----------------------------------------------------------------------------


def _send(media: MediaFile | None) -> Response:
    if media is None:
        abort(404)
    if media.mimetype == "image/svg+xml":
        g.svg_response = True
    response = send_file(media.path, mimetype=media.mimetype, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/modules/<item_id>/media/<path:filename>")
def module_media(item_id: str, filename: str) -> Response:
    return _send(_state().content.module_media(item_id, filename))


@bp.get("/badges/<item_id>/image/<path:filename>")
def badge_image(item_id: str, filename: str) -> Response:
    return _send(_state().content.badge_image(item_id, filename))


@bp.get("/_fingerprint")
def fingerprint() -> Response:
    """A short hash of the content files; the page reloads when it changes."""
    response = Response(_state().content.fingerprint(fresh=True), mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
