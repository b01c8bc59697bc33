"""Rendered module bodies, cached per (item, version, language).

A published version never changes, so its rendering is computed once per process.
The callbacks that render self-check questions and experiment cards belong to the web
layer and are given at construction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .model import Catalog, Module
from .render import RenderedBody, render_body

QuestionHtml = Callable[[Module, str, str], str]
ExperimentHtml = Callable[[str, str], str]
MediaUrl = Callable[[Module, str], str]


class RenderCache:
    """Thread-safe memo of :func:`render_body` results for a catalog's modules."""

    def __init__(
        self,
        catalog: Catalog | None,
        *,
        question_html: QuestionHtml,
        experiment_html: ExperimentHtml,
        media_url: MediaUrl,
    ) -> None:
        self.catalog = catalog
        self._question_html = question_html
        self._experiment_html = experiment_html
        self._media_url = media_url
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], RenderedBody] = {}
        self._fields: dict[tuple[str, ...], RenderedBody | str] = {}

    def module(self, module_id: str, lang: str) -> RenderedBody:
        """The module's body in ``lang`` (French when that language has no body).

        Raises KeyError for an unknown module.
        """
        if self.catalog is None:
            raise KeyError(module_id)
        return self.body(self.catalog.modules[module_id], lang)

    def body(self, module: Module, lang: str) -> RenderedBody:
        """The body of ``module`` (any module, a published version say) in ``lang``."""
        body = module.body(lang) or module.body("fr-CA")
        assert body is not None, f"{module.id} has no body"
        key = (module.id, str(module.version), body.lang)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rendered = render_body(
            body.markdown,
            lang=body.lang,
            self_check=lambda qid: self._question_html(module, qid, body.lang),
            experiment=lambda exp_id: self._experiment_html(exp_id, body.lang),
            media_url=lambda path: self._media_url(module, path),
        )
        with self._lock:
            self._cache[key] = rendered
        return rendered

    def markdown(self, key: tuple[str, ...], text: str, lang: str) -> RenderedBody | str:
        """A Markdown field without blocks (experiment instructions, badge narratives),
        memoised under ``key`` (kind, item, version, language): the HTML, or the error."""
        hit = self._fields.get(key)
        if hit is not None:
            return hit
        try:
            rendered: RenderedBody | str = render_body(
                text, lang=lang, self_check=_no_block, experiment=_no_block, media_url=_no_media
            )
        except ValueError as exc:
            rendered = str(exc)
        with self._lock:
            self._fields[key] = rendered
        return rendered

    def __len__(self) -> int:
        return len(self._cache)


def _no_block(argument: str) -> str:
    raise ValueError(f"'{argument}': self-check and experiment blocks belong in module bodies")


def _no_media(path: str) -> str:
    raise ValueError(f"image {path}: images belong in module bodies")
