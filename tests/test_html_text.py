"""HTML bodies to readable text: paragraphs, code blocks, lists, entities."""
from __future__ import annotations

from filters.html_text import html_to_text


def test_paragraphs_entities_and_inline_tags() -> None:
    html = "<p>Use <strong>fresh</strong> beans &amp; filtered water&#39;s best.</p>\n\n<p>Second   paragraph<br>next line</p>"
    assert html_to_text(html) == "Use fresh beans & filtered water's best.\n\nSecond paragraph\nnext line"


def test_code_blocks_keep_their_lines_and_indentation() -> None:
    html = "<p>Try:</p>\n<pre><code>def brew(x):\n    if x &lt; 3:\n\n\n        return  x\n</code></pre>\n<p>Then <code>a&gt;b</code> works.</p>"
    assert html_to_text(html) == "Try:\n\ndef brew(x):\n    if x < 3:\n\n\n        return  x\n\nThen a>b works."


def test_lists_quotes_headings_and_dropped_elements() -> None:
    html = (
        "<h2>Steps</h2><ol><li>Grind</li><li>Brew <em>slowly</em></li></ol>"
        "<blockquote><p>Quoted text</p></blockquote><img src='x.png' alt='a cup'/><script>alert(1)</script><hr/>End"
    )
    assert html_to_text(html) == "Steps\n\n- Grind\n- Brew slowly\n\nQuoted text\n\nEnd"


def test_plain_text_and_broken_markup() -> None:
    assert html_to_text("  just   text \n") == "just text"
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("") == ""
