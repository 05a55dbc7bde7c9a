"""Start-up of the processes every grading starts anew (the job, the scorer): what they skip.

jsonschema (under nbformat's validator) imports ``rfc3987_syntax`` when it is installed (Jupyter
pulls it in) to check the "iri" string format, and that module builds a Lark grammar at import:
about 1.2 s of CPU per process, paid twice per submission. No notebook schema uses the format, so
these processes mark the module absent before anything imports jsonschema; jsonschema then
leaves that one format unchecked, as it does wherever the package is not installed.
"""

from __future__ import annotations

import sys

SKIPPED = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Make ``import rfc3987_syntax`` raise ImportError in this process (call before nbformat)."""
    for name in SKIPPED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not installed"
