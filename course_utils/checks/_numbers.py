"""Printing an expected and a got number so that a reader sees they differ (issue 17, class 7: a FAIL line
must never show the same rounded value twice).
"""

from __future__ import annotations

import math


def differing(expected: float, got: float, digits: int = 6) -> tuple[str, str]:
    """``expected`` and ``got`` formatted with ``digits`` significant digits, or with as many more (up to
    17) as it takes for the two strings to differ; the relative error is appended when more were needed."""
    for d in range(digits, 18):
        a, b = f"{expected:.{d}g}", f"{got:.{d}g}"
        if a != b:
            if d > digits and math.isfinite(expected) and expected != 0:
                b += f" (relative error {abs(got - expected) / abs(expected):.1e})"
            return a, b
    return f"{expected!r}", f"{got!r}"
