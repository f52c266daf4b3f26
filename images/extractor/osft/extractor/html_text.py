"""HTML and XML markup to plain text with the standard library's parser.

Script, style and similar elements are dropped with their content; block elements become line
breaks so paragraphs stay apart; entities are decoded.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROP = {"script", "style", "noscript", "template", "head", "svg", "math"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
    "table", "td", "th", "tr", "ul",
}  # fmt: skip
_LOOKS_LIKE_MARKUP = re.compile(r"<[a-zA-Z!/][^>]*>|&[a-zA-Z#][a-zA-Z0-9]*;")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self._dropping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self._dropping = max(0, self._dropping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """The visible text of an HTML fragment or page; text without markup is returned unchanged."""
    if not _LOOKS_LIKE_MARKUP.search(text):
        return text
    collector = _TextCollector()
    collector.feed(text)
    collector.close()
    return "".join(collector.parts)
