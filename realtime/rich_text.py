"""Rich text: the safe subset of HTML that rich bodies (FAQ answers, tab bodies) may keep,
and the plain text of a fragment.

`sanitise_rich` cleans with nh3 (the Ammonia HTML sanitiser): basic formatting, links and
images only, nothing that runs, embeds or styles. `plain_text` gives a fragment's text
(never a tag). Both take and return `str`; neither raises on bad markup.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

#: Basic formatting, links and images; nothing that runs, embeds or styles.
RICH_TAGS = frozenset({
    "p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "del", "sub", "sup",
    "ul", "ol", "li", "blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "a", "img",
})
RICH_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
#: Dropped together with everything inside them (not just their tags).
RICH_DROP_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "noscript", "noembed", "template",
    "textarea", "select", "title", "svg", "math", "frame", "frameset", "xmp", "applet",
})
LINK_REL = "noopener noreferrer nofollow"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_LINK_RE = re.compile(r"^(?:https?://[^/?#]|mailto:[^/])", re.IGNORECASE)
_IMAGE_RE = re.compile(r"^(?:https?://[^/?#]|/(?![/]))", re.IGNORECASE)
_BLOCK_TAGS = frozenset({"p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5",
                         "h6", "hr", "ul", "ol", "tr"})


def _rich_attribute(tag: str, attr: str, value: str) -> str | None:
    """nh3 attribute filter: links http/https/mailto only; images http/https or a path on
    this server (never `//host`, which is another site); sizes are small whole numbers."""
    if tag == "a" and attr == "href":
        ok = not _UNSAFE_URL_CHARS.search(value) and _LINK_RE.match(value)
        return value if ok else None
    if tag == "img" and attr == "src":
        ok = not _UNSAFE_URL_CHARS.search(value) and _IMAGE_RE.match(value)
        return value if ok else None
    if tag == "img" and attr in ("width", "height"):
        return value if value.isdigit() and len(value) <= 4 else None
    return value


def sanitise_rich(html: str) -> str:
    """The safe subset of `html`: `RICH_TAGS` with `RICH_ATTRIBUTES`, links rel="noopener
    noreferrer nofollow", no scripts, event handlers, styles, frames or `javascript:`."""
    return nh3.clean(html or "", tags=set(RICH_TAGS), attributes=RICH_ATTRIBUTES,
                     attribute_filter=_rich_attribute, link_rel=LINK_REL,
                     url_schemes=set(LINK_SCHEMES),
                     clean_content_tags=set(RICH_DROP_WITH_CONTENT),
                     strip_comments=True).strip()


class _TextOf(HTMLParser):
    """Text of a (sanitised) HTML fragment; block ends and `<br>` become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str) -> str:
    """Plain text of `html` (markup removed, entities decoded, blank lines collapsed). Any
    markup in the input is dropped first by nh3, so the result never carries a tag."""
    parser = _TextOf()
    parser.feed(nh3.clean(html or "", tags=set(RICH_TAGS), attributes={"img": {"alt"}},
                          clean_content_tags=set(RICH_DROP_WITH_CONTENT)))
    parser.close()
    lines = [ln.strip() for ln in "".join(parser.parts).splitlines()]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()
