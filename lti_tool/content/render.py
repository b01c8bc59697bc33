"""Render a module body (docs/content-format.md) to sanitised HTML.

Pipeline of :func:`render_body`, one fresh ``markdown.Markdown`` instance per call (Python-Markdown
instances are not thread-safe; nothing mutable is shared between calls):

1. A line scanner replaces every ``:::`` line outside fenced code by a marker paragraph holding a
   per-call random token, checks nesting and block names, and calls ``self_check`` / ``experiment``
   for the trusted blocks, in document order.
2. Python-Markdown (``tables``, ``fenced_code``, ``sane_lists``; no ``smarty``, no ``attr_list``)
   builds the tree. A tree processor then wraps the content between markers in ``<aside>`` /
   ``<details>``, gives headings their ids, filters links, routes images through ``media_url``,
   turns ``[ ]`` / ``[x]`` items into glyphs and adds ``scope`` to table headers. Raw HTML written
   in the Markdown loses every tag (``<script>``, ``<style>``... lose their content too); only its
   text and character references remain.
3. nh3 sanitises the serialised HTML against the allowlist of what step 2 produces.
4. Tokens are replaced: image ``src`` by the escaped ``media_url`` result, marker paragraphs of
   trusted blocks by the HTML the callbacks returned (verbatim, never sanitised). The result is
   cut at each ``<h2>`` into sections.
"""

from __future__ import annotations

import html
import itertools
import re
import secrets
import unicodedata
import xml.etree.ElementTree as etree
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import markdown
import nh3
from markdown import util as md_util
from markdown.extensions import Extension
from markdown.extensions.fenced_code import FencedCodeExtension
from markdown.extensions.sane_lists import SaneListExtension
from markdown.extensions.tables import TableExtension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from .bodies import split_front_matter

__all__ = [
    "BLOCK_LABELS",
    "CONTENT_BLOCKS",
    "LANGUAGES",
    "SPOILER_SUMMARY",
    "TRUSTED_BLOCKS",
    "Heading",
    "RenderedBody",
    "render_body",
    "split_front_matter",
]

LANGUAGES: Final = ("fr-CA", "en")
CONTENT_BLOCKS: Final = ("callout", "caution", "example", "discussion", "instructor", "spoiler")
"""``:::`` blocks whose inner Markdown is rendered in an ``<aside>`` (``<details>``: spoiler)."""
TRUSTED_BLOCKS: Final = ("self-check", "experiment")
"""``:::`` blocks replaced by the HTML of a callback; they take one argument and must be empty."""

BLOCK_LABELS: Final[dict[str, dict[str, str]]] = {
    "fr-CA": {
        "callout": "À retenir",
        "caution": "Attention",
        "example": "Exemple",
        "discussion": "Discussion",
        "instructor": "Pour la personne animatrice",
        "spoiler": "Réponse",
    },
    "en": {
        "callout": "Remember",
        "caution": "Caution",
        "example": "Example",
        "discussion": "Discussion",
        "instructor": "For the facilitator",
        "spoiler": "Answer",
    },
}
"""Visually-hidden label that opens each ``<aside>`` block. A spoiler's accessible name is its
``<summary>`` (:data:`SPOILER_SUMMARY`), so its label here is not rendered."""
SPOILER_SUMMARY: Final[dict[str, str]] = {"fr-CA": "Afficher la réponse", "en": "Show the answer"}

CHECKBOX_EMPTY: Final = "\u2610"  # ☐
CHECKBOX_CHECKED: Final = "\u2611"  # ☑


@dataclass(frozen=True)
class Heading:
    """A ``##`` section heading: its HTML ``id``, its title as plain text and its level (2)."""

    id: str
    title: str
    level: int


@dataclass(frozen=True)
class RenderedBody:
    """The rendered body.

    ``html``: the sanitised HTML of the whole body, trusted blocks included.
    ``headings``: one :class:`Heading` per ``<h2>``, in document order.
    ``sections``: ``(id, html)`` per ``<h2>``, in the same order as ``headings``; each ``html``
    starts with its ``<h2>`` and runs to the next one, and the sections joined with ``"\\n"`` equal
    ``html``. Content before the first ``##`` (not expected by the format) is kept as a first
    section with id ``""`` that does not start with an ``<h2>``.
    """

    html: str
    headings: tuple[Heading, ...]
    sections: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- front matter


# --------------------------------------------------------------------------- sanitising

_DROP_WITH_CONTENT: Final = frozenset(
    {"script", "style", "iframe", "noscript", "template", "textarea", "title", "object"}
)

# Raw HTML typed in the Markdown: no tag survives, only text.
_RAW_HTML_CLEANER: Final = nh3.Cleaner(
    tags=set(),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes={},
    link_rel=None,
)

_BLOCK_CLASSES: Final = frozenset(
    {"block"} | {f"block-{name}" for name in CONTENT_BLOCKS if name != "spoiler"}
)

# Exactly what the tree processor produces; nothing else passes.
_CLEANER: Final = nh3.Cleaner(
    tags={"h2", "h3", "h4", "p", "br", "hr", "blockquote", "pre", "ul", "ol", "li"}
    | {"strong", "em", "code", "span", "a", "img"}
    | {"table", "thead", "tbody", "tr", "th", "td"}
    | {"aside", "details", "summary"},
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes={
        "h2": {"id"},
        "h3": {"id"},
        "h4": {"id"},
        "a": {"href"},
        "img": {"src", "alt"},
        "ol": {"start"},
    },
    tag_attribute_values={
        "a": {"rel": {"noopener noreferrer"}},
        "img": {"loading": {"lazy"}},
        "aside": {"role": {"note"}},
        "th": {"scope": {"col", "row"}},
    },
    allowed_classes={
        "aside": set(_BLOCK_CLASSES),
        "details": {"block", "block-spoiler"},
        "span": {"visually-hidden", "checkbox"},
        "ul": {"checklist"},
        "ol": {"checklist"},
    },
    link_rel=None,
    url_schemes={"https", "mailto"},
    strip_comments=True,
)


# --------------------------------------------------------------------------- per-call state


@dataclass
class _State:
    """Everything one :func:`render_body` call accumulates (never shared between calls)."""

    lang: str
    media_url: Callable[[str], str]
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    counter: int = 0
    markers: dict[str, str] = field(default_factory=dict)  # token -> block name, "/" = close
    trusted: dict[str, str] = field(default_factory=dict)  # token -> trusted HTML
    images: dict[str, str] = field(default_factory=dict)  # token -> escaped URL
    stash_start: int = 0  # htmlStash entries before this index come from fenced code
    headings: list[Heading] = field(default_factory=list)

    def token(self, kind: str) -> str:
        """A fresh token: letters and digits only, so Markdown and nh3 leave it alone."""
        self.counter += 1
        return f"zz{self.nonce}{kind}{self.counter}zz"


# --------------------------------------------------------------------------- ::: blocks

_BLOCK_LINE = re.compile(r":::(?:[ \t]*([A-Za-z][A-Za-z0-9-]*))?(?:[ \t]+(\S.*?))?[ \t]*")
_CODE_FENCE = re.compile(r"(`{3,}|~{3,})")
# A code span (kept: `<script>` written as code stays code) or an element dropped with its content.
_CODE_SPAN_OR_DANGEROUS_ELEMENT = re.compile(
    r"(?P<ticks>`+)(?:(?!\n[ \t]*\n).)+?(?<!`)(?P=ticks)(?!`)"
    r"|<(?P<tag>" + "|".join(sorted(_DROP_WITH_CONTENT)) + r")\b[^>]*>.*?</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_ARGUMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")


def _keep_code(match: re.Match[str]) -> str:
    return match.group(0) if match.group("ticks") else ""


def _scan_blocks(
    text: str,
    state: _State,
    self_check: Callable[[str], str],
    experiment: Callable[[str], str],
) -> str:
    """Replace ``:::`` lines by marker paragraphs; call the trusted-block callbacks in order.

    Outside fenced code, also removes ``<script>``, ``<style>``... elements with their content:
    Python-Markdown stashes inline tags one by one, so their content would otherwise stay as text.
    """
    out: list[str] = []
    code: set[int] = set()  # indexes in ``out`` of fenced-code lines
    stack: list[tuple[str, int]] = []  # open content blocks: (name, line)
    trusted: tuple[str, str, int] | None = None  # open trusted block: (name, argument, line)
    fence: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if fence is not None:
            code.add(len(out))
            out.append(line)
            if line.rstrip(" ") == fence:
                fence = None
            continue
        fence_match = _CODE_FENCE.match(line)
        if fence_match and trusted is None:
            fence = fence_match.group(1)
            code.add(len(out))
            out.append(line)
            continue
        if not line.startswith(":::"):
            if trusted is not None and line.strip():
                raise ValueError(f"line {number}: '::: {trusted[0]}' block must be empty")
            out.append(line)
            continue
        match = _BLOCK_LINE.fullmatch(line.rstrip())
        if match is None or (match.group(1) is None and match.group(2) is not None):
            raise ValueError(f"line {number}: malformed block line {line.strip()!r}")
        name, argument = match.group(1), match.group(2)
        if name is None:  # closing ':::'
            if trusted is not None:
                callback = self_check if trusted[0] == "self-check" else experiment
                token = state.token("t")
                state.trusted[token] = callback(trusted[1])
                state.markers[token] = trusted[0]
                out.extend(("", token, ""))
                trusted = None
            elif stack:
                stack.pop()
                token = state.token("c")
                state.markers[token] = "/"
                out.extend(("", token, ""))
            else:
                raise ValueError(f"line {number}: ':::' closes no block")
            continue
        if trusted is not None:
            raise ValueError(f"line {number}: '::: {trusted[0]}' block must be empty")
        if name in TRUSTED_BLOCKS:
            if argument is None or not _BLOCK_ARGUMENT.fullmatch(argument):
                raise ValueError(f"line {number}: '::: {name}' takes exactly one id")
            trusted = (name, argument, number)
        elif name in CONTENT_BLOCKS:
            if argument is not None:
                raise ValueError(f"line {number}: '::: {name}' takes no argument")
            stack.append((name, number))
            token = state.token("o")
            state.markers[token] = name
            out.extend(("", token, ""))
        else:
            raise ValueError(f"line {number}: unknown block '::: {name}'")
    if trusted is not None:
        raise ValueError(f"line {trusted[2]}: '::: {trusted[0]}' is never closed")
    if stack:
        raise ValueError(f"line {stack[-1][1]}: '::: {stack[-1][0]}' is never closed")
    chunks: list[str] = []
    for is_code, group in itertools.groupby(enumerate(out), key=lambda pair: pair[0] in code):
        chunk = "\n".join(line for _, line in group)
        chunks.append(chunk if is_code else _CODE_SPAN_OR_DANGEROUS_ELEMENT.sub(_keep_code, chunk))
    return "\n".join(chunks)


# --------------------------------------------------------------------------- helpers

_SECTION_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_EXPLICIT_ID = re.compile(r"[ \t]*\{#([^{}]*)\}[ \t]*$")
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_AMP_ENTITY = re.compile(re.escape(md_util.AMP_SUBSTITUTE) + r"(#[0-9]+|#[xX][0-9a-fA-F]+|\w+);")
_MEDIA_PATH = re.compile(r"\w[\w.-]*(?:/\w[\w.-]*)*")
_TASK = re.compile(r"\[([ xX])\](?:[ \t]+|$)")
_HEADING_TAGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SLUG_MAX = 60


def _decode_attribute(value: str) -> str:
    """The URL a browser sees for a tree attribute: Markdown keeps ``&...;`` references as is."""
    value = _AMP_ENTITY.sub(lambda m: html.unescape(f"&{m.group(1)};"), value)
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), value)


def _slugify(text: str) -> str:
    """ASCII slug: accents dropped, lowercase, runs of other characters become one hyphen."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > _SLUG_MAX:
        slug = slug[:_SLUG_MAX].rsplit("-", 1)[0] if "-" in slug[:_SLUG_MAX] else slug[:_SLUG_MAX]
    return slug or "section"


def _append_text(parent: etree.Element, index: int, text: str) -> None:
    """Append ``text`` right before position ``index`` of ``parent``."""
    if not text:
        return
    if index == 0:
        parent.text = (parent.text or "") + text
    else:
        previous = parent[index - 1]
        previous.tail = (previous.tail or "") + text


def _replace_with_content(
    parent: etree.Element, element: etree.Element, text: str | None = None
) -> None:
    """Replace ``element`` by its text and children (or by ``text``), keeping its tail."""
    index = list(parent).index(element)
    parent.remove(element)
    children = [] if text is not None else list(element)
    _append_text(parent, index, text if text is not None else (element.text or ""))
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
    _append_text(parent, index + len(children), element.tail or "")


# --------------------------------------------------------------------------- Markdown hooks


class _StashMark(Preprocessor):
    """Runs after ``fenced_code`` and before ``html_block``: remembers where raw HTML starts."""

    def __init__(self, md: markdown.Markdown, state: _State) -> None:
        super().__init__(md)
        self.state = state

    def run(self, lines: list[str]) -> list[str]:
        self.state.stash_start = len(self.md.htmlStash.rawHtmlBlocks)
        return lines


class _BodyTree(Treeprocessor):
    """Every structural rule of the body format, applied to the parsed tree."""

    def __init__(self, md: markdown.Markdown, state: _State) -> None:
        super().__init__(md)
        self.state = state

    def run(self, root: etree.Element) -> None:
        self._strip_raw_html()
        self._build_blocks(root)
        self._headings(root)
        self._images(root)
        self._links(root)
        self._checklists(root)
        self._tables(root)

    def _strip_raw_html(self) -> None:
        blocks = self.md.htmlStash.rawHtmlBlocks
        for index in range(self.state.stash_start, len(blocks)):
            block = blocks[index]
            if isinstance(block, str):
                blocks[index] = _RAW_HTML_CLEANER.clean(block)
            else:  # pragma: no cover - only md_in_html stores elements, and it is not enabled
                blocks[index] = ""

    def _build_blocks(self, root: etree.Element) -> None:
        markers = self.state.markers
        children = list(root)
        for child in children:
            root.remove(child)
        stack = [root]
        seen: set[str] = set()
        for child in children:
            token = (child.text or "").strip() if child.tag == "p" and len(child) == 0 else ""
            name = markers.get(token)
            if name is None:
                stack[-1].append(child)
                continue
            seen.add(token)
            if name == "/":
                stack.pop()
            elif name in TRUSTED_BLOCKS:
                stack[-1].append(child)  # stays <p>token</p> until the trusted HTML replaces it
            else:
                container = self._container(name)
                stack[-1].append(container)
                stack.append(container)
        if seen != markers.keys() or len(stack) != 1:
            raise ValueError(
                "a ':::' line ended up inside a list, quote or raw HTML; "
                "put ':::' lines at the start of a line, outside other constructs"
            )

    def _container(self, name: str) -> etree.Element:
        lang = self.state.lang
        if name == "spoiler":
            element = etree.Element("details", {"class": "block block-spoiler"})
            summary = etree.SubElement(element, "summary")
            summary.text = SPOILER_SUMMARY[lang]
            summary.tail = "\n"
        else:
            element = etree.Element("aside", {"class": f"block block-{name}", "role": "note"})
            label = etree.SubElement(element, "span", {"class": "visually-hidden"})
            label.text = BLOCK_LABELS[lang][name]
            label.tail = "\n"
        element.text = "\n"
        element.tail = "\n"
        return element

    def _plain_text(self, element: etree.Element) -> str:
        text = "".join(element.itertext())
        blocks = self.md.htmlStash.rawHtmlBlocks

        def stashed(match: re.Match[str]) -> str:
            block = blocks[int(match.group(1))]
            raw = block if isinstance(block, str) else ""
            return html.unescape(re.sub(r"<[^>]*>", "", raw))

        text = md_util.HTML_PLACEHOLDER_RE.sub(stashed, text)
        text = _AMP_ENTITY.sub(lambda m: html.unescape(f"&{m.group(1)};"), text)
        return " ".join(text.split())

    @staticmethod
    def _pop_explicit_id(element: etree.Element) -> str | None:
        """Remove a trailing ``{#id}`` from a heading; return the id."""
        last = element[-1] if len(element) else None
        text = (last.tail if last is not None else element.text) or ""
        match = _EXPLICIT_ID.search(text)
        if match is None:
            return None
        stripped = text[: match.start()]
        if last is not None:
            last.tail = stripped
        else:
            element.text = stripped
        return match.group(1).strip()

    def _headings(self, root: etree.Element) -> None:
        headings = [element for element in root.iter() if element.tag in _HEADING_TAGS]
        top_level = {id(child) for child in root}
        used: set[str] = set()
        explicit: dict[int, str] = {}
        for element in headings:
            if element.tag not in {"h1", "h2"}:
                continue
            if id(element) not in top_level:
                raise ValueError(
                    f"'## {self._plain_text(element)}' is inside a list, quote or ':::' block; "
                    "section headings must be at the top level"
                )
            section_id = self._pop_explicit_id(element)
            if section_id is None:
                continue
            if not _SECTION_ID.fullmatch(section_id):
                raise ValueError(f"section id {{#{section_id}}} is not a slug like 'my-section'")
            if section_id in used:
                raise ValueError(f"section id {{#{section_id}}} is used twice")
            used.add(section_id)
            explicit[id(element)] = section_id

        def unique(candidate: str) -> str:
            result, suffix = candidate, 2
            while result in used:
                result, suffix = f"{candidate}-{suffix}", suffix + 1
            used.add(result)
            return result

        current: str | None = None
        for element in headings:
            title = self._plain_text(element)
            element.attrib.clear()
            if element.tag in {"h1", "h2"}:
                element.tag = "h2"
                section_id = explicit.get(id(element)) or unique(_slugify(title))
                current = section_id
                self.state.headings.append(Heading(section_id, title, 2))
                element.set("id", section_id)
            else:
                element.tag = f"h{min(int(element.tag[1]), 4)}"
                slug = _slugify(title)
                element.set("id", unique(f"{current}--{slug}" if current else slug))

    def _images(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for image in [child for child in parent if child.tag == "img"]:
                source = _decode_attribute(image.get("src", ""))
                alt = image.get("alt", "")
                if not _MEDIA_PATH.fullmatch(source):
                    _replace_with_content(parent, image, alt)
                    continue
                token = self.state.token("i")
                self.state.images[token] = html.escape(self.state.media_url(source), quote=True)
                image.attrib.clear()
                image.set("src", token)
                image.set("alt", alt)
                image.set("loading", "lazy")

    def _links(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for link in [child for child in parent if child.tag == "a"]:
                href = _decode_attribute(link.get("href", ""))
                link.attrib.clear()
                lowered = href.lower()
                if lowered.startswith("https://") and len(href) > len("https://"):
                    link.set("href", href)
                    link.set("rel", "noopener noreferrer")
                elif (lowered.startswith("mailto:") and len(href) > len("mailto:")) or (
                    href.startswith("#") and len(href) > 1
                ):
                    link.set("href", href)
                else:
                    _replace_with_content(parent, link)

    @staticmethod
    def _checklists(root: etree.Element) -> None:
        for listing in [element for element in root.iter() if element.tag in {"ul", "ol"}]:
            items = [child for child in listing if child.tag == "li"]
            tasks = 0
            for item in items:
                target = item
                if not (item.text or "").strip() and len(item) and item[0].tag == "p":
                    target = item[0]  # loose list: the text sits in a paragraph
                match = _TASK.match(target.text or "")
                if match is None:
                    continue
                tasks += 1
                glyph = etree.Element("span", {"class": "checkbox"})
                glyph.text = CHECKBOX_EMPTY if match.group(1) == " " else CHECKBOX_CHECKED
                glyph.tail = " " + (target.text or "")[match.end() :]
                target.text = None
                target.insert(0, glyph)
            if items and tasks == len(items):
                listing.set("class", "checklist")

    @staticmethod
    def _tables(root: etree.Element) -> None:
        for cell in [element for element in root.iter() if element.tag in {"th", "td"}]:
            cell.attrib.clear()
        for head in root.iter("thead"):
            for cell in head.iter("th"):
                cell.set("scope", "col")


class _BodyExtension(Extension):
    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # fenced_code_block is 25 and html_block 20: the mark runs between them.
        md.preprocessors.register(_StashMark(md, self.state), "dataide_stash_mark", 22)
        # After 'unescape' (0): backslash escapes are resolved in text and attributes.
        md.treeprocessors.register(_BodyTree(md, self.state), "dataide_body", -10)


# --------------------------------------------------------------------------- entry point

_H2_START = re.compile(r'<h2 id="([^"]*)">')
_EMPTY_PARAGRAPH = re.compile(r"<p>\s*</p>\n?")


def render_body(
    markdown_text: str,
    *,
    lang: str,
    self_check: Callable[[str], str],
    experiment: Callable[[str], str],
    media_url: Callable[[str], str],
) -> RenderedBody:
    """Render a module body (without front matter) to sanitised HTML.

    ``lang`` (``"fr-CA"`` or ``"en"``) picks the block labels. ``self_check(qid)`` and
    ``experiment(id)`` are called once per ``::: self-check qid`` / ``::: experiment id`` block, in
    document order; what they return is trusted and inserted verbatim where the block was (never
    sanitised). ``media_url(path)`` is called once per image whose path is relative (word
    characters, ``.``, ``-`` and ``/``; no segment starting with ``.``, so no ``..``); its result
    becomes the ``src`` (HTML-escaped, not sanitised). An image with any other source
    (``https:``, ``data:``, an absolute path...) is replaced by its alt text.

    Output contract:

    * ``## Title {#id}`` gives ``<h2 id="id">Title</h2>``; a ``##`` (or ``#``) without ``{#id}``
      gets a slug of its title. ``###`` to ``######`` become ``<h3>``/``<h4>`` with ids
      ``<section id>--<slug of title>`` (just the slug before the first ``##``); all ids are
      unique (``-2``, ``-3``... on collisions).
    * ``::: callout|caution|example|discussion|instructor`` gives
      ``<aside class="block block-<name>" role="note">`` opening with
      ``<span class="visually-hidden">`` + the localized label (:data:`BLOCK_LABELS`);
      ``::: spoiler`` gives ``<details class="block block-spoiler"><summary>`` +
      :data:`SPOILER_SUMMARY`. The inner Markdown is rendered; blocks may nest.
    * Tables (``<th scope="col">``, alignment dropped), fenced code, ``sane_lists``; no smart
      quotes. List items starting ``[ ]`` / ``[x]`` start with ``<span class="checkbox">`` ☐ / ☑;
      a list made only of such items gets ``class="checklist"``.
    * Links: ``https://`` (with ``rel="noopener noreferrer"``, no ``target``), ``mailto:`` and
      ``#anchor`` are kept; any other link becomes its plain content. Images:
      ``<img src alt loading="lazy">`` only.
    * Raw HTML in the Markdown keeps its text only; ``<script>``, ``<style>`` and the like are
      removed with their content. Everything except trusted blocks and image URLs then goes
      through nh3 with an allowlist of exactly the markup above.

    Raises ``ValueError`` for an unsupported ``lang`` and for structural errors the content
    checker reports before publishing: an unknown, malformed, unclosed or non-empty trusted
    ``:::`` block, a ``##`` heading nested in a list or block, a section id that is not a slug or
    is used twice. Errors from the callbacks propagate.

    Pure apart from the callbacks: a fresh Markdown instance per call, so it is thread-safe.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; expected one of {LANGUAGES}")
    state = _State(lang=lang, media_url=media_url)
    text = markdown_text.replace("\r\n", "\n").replace("\r", "\n")
    prepared = _scan_blocks(text, state, self_check, experiment)
    md = markdown.Markdown(
        extensions=[
            TableExtension(),
            FencedCodeExtension(),
            SaneListExtension(),
            _BodyExtension(state),
        ],
        output_format="html",
    )
    clean = _EMPTY_PARAGRAPH.sub("", _CLEANER.clean(md.convert(prepared)))
    clean = re.sub(
        rf'src="(zz{state.nonce}i[0-9]+zz)"',
        lambda m: f'src="{state.images[m.group(1)]}"',
        clean,
    )

    trusted_paragraph = re.compile(rf"<p>(zz{state.nonce}t[0-9]+zz)</p>")

    def insert_trusted(fragment: str) -> str:
        result = trusted_paragraph.sub(lambda m: state.trusted[m.group(1)], fragment)
        return result.strip()

    starts = [match.start() for match in _H2_START.finditer(clean)]
    if len(starts) != len(state.headings):  # pragma: no cover - defensive
        raise RuntimeError("rendered <h2> elements do not match the headings")
    bounds = [*starts, len(clean)]
    sections: list[tuple[str, str]] = []
    preamble = clean[: bounds[0]]
    if preamble.strip():
        sections.append(("", insert_trusted(preamble)))
    for heading, start, end in zip(state.headings, starts, bounds[1:], strict=True):
        sections.append((heading.id, insert_trusted(clean[start:end])))
    if any(state.nonce in fragment for _, fragment in sections):  # pragma: no cover - defensive
        raise RuntimeError("a render token was left in the output")
    return RenderedBody(
        html="\n".join(fragment for _, fragment in sections),
        headings=tuple(state.headings),
        sections=tuple(sections),
    )
