"""Markdown to safe HTML for lessons, quizzes and lab instructions.

Rendering is followed by an allow-list sanitizer (nh3): scripts, event handlers,
styles and `javascript:` URLs never reach a browser, whatever the content says.
"""

from __future__ import annotations

import markdown as md
import nh3

# pymdownx.superfences, not Python-Markdown's fenced_code: it also finds fences nested
# in list items and admonitions (indented 4 spaces, Python-Markdown's list rule), which
# fenced_code leaves as paragraphs of backticks.
_EXTENSIONS = ["pymdownx.superfences", "tables", "admonition", "codehilite", "sane_lists", "toc", "attr_list"]
_EXTENSION_CONFIGS = {
    "codehilite": {"css_class": "highlight", "guess_lang": False},
    "toc": {"permalink": False},
}

_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
}


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def render(text: str) -> str:
    html = md.markdown(text, extensions=_EXTENSIONS, extension_configs=_EXTENSION_CONFIGS)
    return sanitize(html)
