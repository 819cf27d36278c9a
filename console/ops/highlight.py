"""JSON highlighting for the message browser, through Pygments: a message value that
parses as JSON is shown indented, with its keys, strings, numbers and literals
coloured; anything else is shown as escaped text."""

from __future__ import annotations

import json

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer

CSS_SCOPE = ".ops-json"
MAX_CHARS = 200_000  # larger values are shown as text, unhighlighted

_formatter = HtmlFormatter(nowrap=True, style="default")
_lexer = JsonLexer()


def value_html(data: bytes | None) -> tuple[SafeString, bool]:
    """(the value as HTML, whether it is JSON)."""
    text = (data or b"").decode("utf-8", "replace")
    if len(text) <= MAX_CHARS:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
            return mark_safe(highlight(pretty, _lexer, _formatter)), True
    return escape(text), False


def style_css() -> SafeString:
    return mark_safe(_formatter.get_style_defs(CSS_SCOPE))
