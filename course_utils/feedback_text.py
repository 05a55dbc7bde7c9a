"""How verdict lines are laid out for a reader: wrapped on words in a notebook, joined back to read.

JupyterLab breaks long output lines anywhere, even mid-word (its output ``pre`` has ``word-break:
break-all``), so a check's PASS/FAIL line printed inside a kernel is wrapped at ``WIDTH`` columns on
spaces, its continuation lines indented by ``CONTINUATION``. ``unwrap`` joins them back into one line
per verdict (``course check`` and Validate read the printed output that way). No torch here: the
processes that only read notebooks import this without paying for it.
"""

from __future__ import annotations

import sys
import textwrap

WIDTH = 80
"""Columns a printed verdict line may take in a notebook before it is wrapped."""

CONTINUATION = "    "
"""Prefix of the wrapped continuation lines of one verdict."""


def in_notebook() -> bool:
    """True when stdout goes to a Jupyter kernel's output area (ipykernel's stream)."""
    return type(sys.stdout).__module__.startswith("ipykernel")


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """``line`` broken on spaces into lines of at most ``width`` columns (longer words kept whole)."""
    return textwrap.wrap(
        line,
        width=width,
        subsequent_indent=CONTINUATION,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]


def unwrap(printed: list[str]) -> list[str]:
    """The verdict lines of printed output: continuation lines joined back onto their verdict."""
    lines: list[str] = []
    for line in printed:
        if line.startswith(CONTINUATION) and lines and lines[-1].startswith(("PASS", "FAIL")):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines
