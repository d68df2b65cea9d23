"""README Markdown to safe HTML, and source files to highlighted HTML.

Markdown is rendered with raw HTML turned off: a tag in the text comes out as text, so no
script, style, event handler, iframe or SVG ever reaches the page. Link and image
addresses pass an allow-list of schemes (http, https and mailto for links; http and https
for images); any other (javascript:, vbscript:, data:, file: …) leaves the text unlinked.
Relative addresses point into the model's files at the README's revision. Pages also send
a Content-Security-Policy without inline script, a second wall should one of these fail.
"""

from __future__ import annotations

import functools
import posixpath
import re
from urllib.parse import quote

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*):")
# Highlighting is pure Python: past this many characters a file is shown as plain text.
HIGHLIGHT_LIMIT = 256 * 1024
# The same for a README (a model card's description is cut at 1 MiB already).
MARKDOWN_LIMIT = 1024 * 1024
LINK_REL = "nofollow noopener noreferrer"


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


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
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


def _fix_addresses(tokens: list[Token], files: str, raw: str) -> None:
    for token in tokens:
        if token.children:
            _fix_addresses(token.children, files, raw)
        if token.type == "link_open":
            href = str(token.attrGet("href") or "")
            token.attrSet("href", _in_repo(href, files) if _scheme(href) is None else href)
            token.attrSet("rel", LINK_REL)
        elif token.type == "image":
            src = str(token.attrGet("src") or "")
            scheme = _scheme(src)
            if scheme is not None and scheme not in IMAGE_SCHEMES:
                token.attrSet("src", "")
            elif scheme is None:
                token.attrSet("src", _in_repo(src, raw))
            token.attrSet("loading", "lazy")
        elif token.type in ("th_open", "td_open") and token.attrGet("style"):
            # Column alignment as a class: the pages' CSP refuses inline styles.
            align = str(token.attrGet("style")).removeprefix("text-align:")
            token.attrs.pop("style")
            token.attrSet("class", f"align-{align}")


def markdown(text: str, files: str = "", raw: str = "") -> Markup:
    """Markdown as sanitised HTML; relative links go under `files`, relative images `raw`."""
    md = _parser()
    tokens = md.parse(text)
    _fix_addresses(tokens, files, raw)
    return Markup(md.renderer.render(tokens, md.options, {}))


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
