"""Student-controlled names and text, made safe for the reports (summary.md, grades.csv, notes).

A student picks their folder's or zip's name, every file name inside it and whatever their notebook
prints. None of it may forge a line of ``summary.md`` or a cell of ``grades.csv``: a newline, a
``|``, a markdown link or an HTML tag in a file name must show as the characters it is made of.

* :func:`is_student_id` decides which folder names are usable as student ids at all;
* :func:`shown` quotes a name for a problem line (one line, non-printing characters escaped);
* :func:`one_line` makes any text one line; :func:`markdown` and :func:`csv_cell` make it inert
  in a markdown document and a spreadsheet.
"""

from __future__ import annotations

import re

_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.@+ ()/-]+")
# Markdown's inline syntax: emphasis, code, links and images, HTML, table cells, escapes, entities.
_MARKDOWN = re.compile(r"[\\`*\[\]<>|&~]")
_LONE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # intraword _ is no emphasis
_SPREADSHEET_FORMULA = ("=", "+", "-", "@")


def is_student_id(name: str) -> bool:
    """Letters, digits and ``_.@+-``, starting with a letter or digit, at most 100 characters.

    ``fullmatch``: ``re.match(...$)`` would also accept a trailing newline.
    """
    return _STUDENT_ID.fullmatch(name) is not None


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (newlines, tabs, terminal escapes,
    line separators, bidirectional overrides) written as its Python escape (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(name: str) -> str:
    """A file or folder name as a problem line shows it: as is when it is plain (letters, digits,
    ``_.@+-()`` and spaces), else quoted with its non-printing characters escaped."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    return repr(name)


def markdown(text: str) -> str:
    """``text`` as one line of markdown that renders as exactly these characters: no emphasis,
    code, link, image, HTML or table cell of its own."""
    escaped = _MARKDOWN.sub(lambda m: "\\" + m.group(), one_line(text))
    return _LONE_UNDERSCORE.sub(r"\\_", escaped)


def csv_cell(text: str) -> str:
    """``text`` as one line that a spreadsheet shows as text, never runs as a formula."""
    line = one_line(text)
    return "'" + line if line.startswith(_SPREADSHEET_FORMULA) else line
