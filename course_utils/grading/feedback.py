"""Feedback pages that run nothing: student-authored HTML made inert.

nbgrader's feedback is the student's notebook as HTML: their markdown cells (raw HTML allowed) and
their outputs (``IPython.display.HTML``/``Javascript``, SVG) are copied in verbatim, so a page the
instructor or the student opens would run whatever the student wrote. :func:`make_inert` rewrites
each feedback page after ``generate_feedback``, with two walls:

1. the page's body (the notebook: everything student-authored is there) goes through bleach with
   an allow-list of text and layout elements and attributes: no script, no event handler, no
   ``javascript:`` (or any non-web) URL, no iframe, object, embed, form, meta refresh, base, SVG or
   MathML; a tag that is not allowed shows as text, so the instructor sees what was tried; images
   only from ``data:image/...`` (the notebook's own figures) or http(s) (which the policy below
   then blocks from loading);
2. the page's head is rebuilt: the charset, a ``Content-Security-Policy`` that allows no script
   at all, no network request (images and fonts from ``data:`` only) and no form or base, the title
   and the template's own ``<style>`` blocks. The template's scripts (MathJax from a CDN, so math
   shows as its TeX source) are dropped: feedback needs none.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import bleach
from bleach.css_sanitizer import CSSSanitizer

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "main",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
        "var",
    ]
)
_COMMON = ["class", "id", "title", "lang", "dir", "style"]
_WEB = re.compile(r"(?i)https?:")
_DATA_IMAGE = re.compile(r"(?i)data:image/(png|jpe?g|gif|webp|bmp);")


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in _COMMON:
        return True
    if tag == "a":
        return name == "name" or (name == "href" and not value.lower().startswith("data:"))
    if tag == "img":
        if name == "src":
            return bool(_WEB.match(value) or _DATA_IMAGE.match(value))
        return name in ("alt", "width", "height")
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan", "align", "valign")
    if tag in ("col", "colgroup"):
        return name == "span"
    if tag == "ol":
        return name in ("start", "type")
    return tag == "details" and name == "open"


_CLEANER = bleach.Cleaner(
    tags=TAGS,
    attributes=_attribute,
    protocols={"http", "https", "mailto", "data"},  # data: only where _attribute allows it
    strip=False,
    strip_comments=True,
    css_sanitizer=CSSSanitizer(),  # style="": known properties only (url() cannot load: CSP)
)
_HEAD_END = re.compile(r"(?i)</head\s*>")
_STYLE = re.compile(r"(?is)<style\b[^>]*>(.*?)</style\s*>")
_TITLE = re.compile(r"(?is)<title\b[^>]*>(.*?)</title\s*>")
_PAGE_TAGS = re.compile(r"(?i)</?(?:body|html)\b[^>]*>")  # the template's (nested) page tags


def inert_html(page: str) -> str:
    """``page`` (an nbconvert/nbgrader HTML page) with nothing that can run (module docstring)."""
    parts = _HEAD_END.split(page, maxsplit=1)
    head, body = (parts[0], parts[1]) if len(parts) == 2 else ("", page)
    title = _TITLE.search(head)
    title_text = html.escape(html.unescape(title.group(1))) if title else "feedback"
    # The head is the template's, not the student's; a <style>'s text ends at the first </style.
    styles = "".join(f"<style>{css}</style>\n" for css in _STYLE.findall(head))
    clean = _CLEANER.clean(_PAGE_TAGS.sub("", body))
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta charset="utf-8">\n{CSP_META}\n<title>{title_text}</title>\n{styles}</head>\n'
        f"<body>\n{clean}\n</body>\n</html>\n"
    )


def make_inert(folder: Path) -> list[Path]:
    """Rewrite every ``*.html`` under ``folder`` with :func:`inert_html`; the pages rewritten."""
    pages = sorted(Path(folder).rglob("*.html"))
    for page in pages:
        page.write_text(inert_html(page.read_text(encoding="utf-8", errors="replace")), "utf-8")
    return pages
