"""README Markdown to safe HTML, and source files to highlighted HTML.

Markdown is rendered as the Hub and Gitea render model cards: heading anchors, task lists,
footnotes, `$…$`/`$$…$$` math (as MathML, on the server) and the HTML that cards commonly
hold (`<img>`, `<details>`, `<br>`, `<sub>`, tables, `align` …). The result then goes
through nh3 (the Ammonia sanitizer) with an allow-list of tags, attributes, classes and
URL schemes (http, https, mailto): script, style, event handlers, iframes, SVG, forms and
every other tag are removed. Ids get the prefix `md-` (and the README's own `#…` links
with them), so a README cannot clobber the page's own elements. Relative addresses point
into the model's files at the README's revision. Pages also send a Content-Security-Policy
without inline script or style, a second wall should one of these fail.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable
from urllib.parse import quote

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*):")
# Highlighting is pure Python: past this many characters a file is shown as plain text.
HIGHLIGHT_LIMIT = 256 * 1024
# The same for a README (a model card's description is cut at 1 MiB already).
MARKDOWN_LIMIT = 1024 * 1024
LINK_REL = "nofollow noopener noreferrer"
ID_PREFIX = "md-"
MATHML = {"math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt",
          "mroot", "msub", "msup", "msubsup", "munder", "mover", "munderover", "mtable",
          "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose", "semantics",
          "annotation"}  # fmt: skip
TAGS = (nh3.ALLOWED_TAGS | MATHML | {"details", "summary", "input", "section"}) - {"area", "map"}
_ALIGNED = {"p", "div", "img", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr"}
ATTRIBUTES = {
    **{tag: set(nh3.ALLOWED_ATTRIBUTES.get(tag, set())) for tag in TAGS},
    "*": {"id", "title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height", "loading", "align"},
    "details": {"open"},
    "input": {"checked"},  # a disabled checkbox only: see markdown()
    "math": {"display", "xmlns"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form"},
    "mstyle": {"displaystyle", "scriptlevel"},
    "mspace": {"width"},
    "mfrac": {"linethickness"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"},
    "menclose": {"notation"},
    "annotation": {"encoding"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start", "reversed", "type"},
}
for _tag in _ALIGNED:
    ATTRIBUTES.setdefault(_tag, set()).add("align")
# The class attribute is allowed through CLASSES only (nh3 refuses it in both).
# Only the classes this renderer writes itself: a README cannot dress as the page's banners.
CLASSES: dict[str, set[str]] = {
    "span": set(STANDARD_TYPES.values()) - {""},
    "td": {"align-left", "align-center", "align-right"},
    "th": {"align-left", "align-center", "align-right"},
    "li": {"task-list-item", "footnote-item"},
    "ul": {"contains-task-list"},
    "input": {"task-list-item-checkbox"},
    "section": {"footnotes"},
    "hr": {"footnotes-sep"},
    "sup": {"footnote-ref"},
    "a": {"footnote-backref"},
}


def _scheme(url: str) -> str | None:
    match = SCHEME.match(url)
    return match.group(1).lower() if match else None


def _allowed_link(url: str) -> bool:
    scheme = _scheme(url)
    return scheme is None or scheme in LINK_SCHEMES


def _code_block(code: str, lang: str, _attrs: object) -> str:
    """Fenced code highlighted by its language; "" lets markdown-it escape it as it is."""
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None or len(code) > HIGHLIGHT_LIMIT:
        return ""
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def _math(latex: str, options: dict[str, object]) -> str:
    """`$…$` or `$$…$$` as MathML; LaTeX it cannot read is shown as written."""
    display = "block" if options.get("display_mode") else "inline"
    try:
        return str(latex_to_mathml(latex, display=display))
    except Exception:  # noqa: BLE001  # latex2mathml raises many kinds on bad input
        return f"<code>{escape(latex)}</code>"


@functools.cache
def _parser() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
        .enable(["table", "strikethrough"])
        .use(footnote_plugin)
        .use(tasklists_plugin)
        .use(dollarmath_plugin, renderer=_math, double_inline=True)
        .use(anchors_plugin, min_level=1, max_level=6)
    )
    md.options["highlight"] = _code_block
    md.validateLink = _allowed_link  # type: ignore[method-assign]  # markdown-it's hook
    return md


def _in_repo(url: str, base: str) -> str:
    """A relative address in a README made to point into the model's files."""
    if url.startswith(("#", "/", "?")):
        return url
    path, sep, fragment = url.partition("#")
    clean = posixpath.normpath("/" + path).lstrip("/")
    return base + quote(clean, safe="/%") + sep + fragment


def _fix_alignment(tokens: list[Token]) -> None:
    for token in tokens:
        if token.children:
            _fix_alignment(token.children)
        if token.type in ("th_open", "td_open") and token.attrGet("style"):
            # Column alignment as a class: the pages' CSP refuses inline styles.
            align = str(token.attrGet("style")).removeprefix("text-align:")
            token.attrs.pop("style")
            token.attrSet("class", f"align-{align}")


def _address_filter(files: str, raw: str) -> Callable[[str, str, str], str | None]:
    """What nh3 keeps of each attribute: addresses pointed into the model, ids' links fixed."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src"):
            return value
        if value.startswith("#"):
            return "#" + ID_PREFIX + value[1:]  # nh3 prefixes the ids they point at
        scheme = _scheme(value)
        if tag == "img" and scheme is not None and scheme not in IMAGE_SCHEMES:
            return None
        if scheme is None:
            return _in_repo(value, raw if tag == "img" else files)
        return value

    return keep


def markdown(text: str, files: str = "", raw: str = "") -> Markup:
    """Markdown as sanitised HTML; relative links go under `files`, relative images `raw`."""
    md = _parser()
    tokens = md.parse(text)
    _fix_alignment(tokens)
    rendered = md.renderer.render(tokens, md.options, {})
    clean = nh3.clean(
        rendered,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=_address_filter(files, raw),
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        allowed_classes=CLASSES,
        id_prefix=ID_PREFIX,
        tag_attribute_values={"input": {"type": {"checkbox"}}},
        set_tag_attribute_values={"img": {"loading": "lazy"}, "input": {"disabled": ""}},
    )
    return Markup(clean)


def highlighted(text: str, name: str) -> Markup:
    """A source file highlighted for its file name, with line numbers."""
    try:
        lexer = get_lexer_for_filename(name, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    formatter = HtmlFormatter(cssclass="hl", linenos="table", lineanchors="L", anchorlinenos=True)
    return Markup(highlight(text, lexer, formatter))


def plain(text: str, note: str) -> Markup:
    """Text shown as it is, under a note that says why it is not rendered."""
    return (
        Markup('<p class="render-note">')
        + escape(note)
        + Markup('</p><pre class="plain">')
        + escape(text)
        + Markup("</pre>")
    )
