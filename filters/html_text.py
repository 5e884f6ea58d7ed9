"""HTML post bodies (Stack Exchange's ``Body``) as readable plain text.

Tags are dropped and entities unescaped; block elements (paragraphs, list items, headings, quotes,
table rows) become line breaks so paragraphs stay apart; ``<pre>`` blocks keep their code exactly,
line by line; inline ``<code>`` keeps its text. Images and scripts leave nothing.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements that start and end on a line of their own, and those that also leave a blank line after.
_BLOCK = {"div", "ul", "ol", "li", "tr", "table", "dl", "dt", "dd", "hr", "br", "section", "article"}
_PARAGRAPH = {"p", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"}
_DROPPED_CONTENT = {"script", "style", "template"}

_SPACES = re.compile(r"[^\S\n]+")
_LINE_EDGES = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pre_depth = 0
        self.dropped_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_CONTENT:
            self.dropped_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
            self.parts.append("\n\n\x00")
        elif tag in _PARAGRAPH:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_CONTENT:
            self.dropped_depth = max(0, self.dropped_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self.parts.append("\x01\n\n")
        elif tag in _PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in _BLOCK and tag != "li":  # the next item's own break separates list items
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK or tag in _PARAGRAPH:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.dropped_depth:
            return
        if self.pre_depth:
            # Control characters mark the code so whitespace folding leaves it alone (see html_to_text).
            self.parts.append(data.replace("\x00", "").replace("\x01", ""))
        else:
            self.parts.append(_SPACES.sub(" ", data.replace("\x00", "").replace("\x01", "")))


def _fold(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _LINE_EDGES.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text)


def html_to_text(html: str) -> str:
    """Readable text of an HTML fragment: paragraphs apart, code blocks verbatim, no tags, no entities."""
    if "<" not in html and "&" not in html:
        return _fold(html).strip()
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = "".join(collector.parts)
    pieces: list[str] = []
    # Split on the \x00 ... \x01 code markers: fold whitespace outside code only.
    for chunk in text.split("\x00"):
        code, marker, rest = chunk.partition("\x01")
        if marker:
            pieces.append(code.strip("\n"))
            pieces.append(_fold(rest))
        else:
            pieces.append(_fold(chunk))
    return "".join(pieces).strip()
