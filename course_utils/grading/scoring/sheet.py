"""The trusted scorer's verdict on one submission, as plain data that crosses process boundaries.

Kept apart from ``score.py`` (which imports torch and the checks) so that the processes that only
read or record a sheet (the grading job, the worker) do not pay for those imports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

HEADER = "Scored by the trusted grader, outside your notebook:"


@dataclass
class TestScore:
    """One test cell: its points, what it scored and the checks' lines."""

    grade_id: str
    points: float
    score: float
    lines: list[str] = field(default_factory=list)


@dataclass
class ScoreSheet:
    """Every test cell of one submission, and notes for the instructor."""

    tests: list[TestScore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    flagged: bool = False  # scored, but worth a look by hand (see ``score.dynamic_lookups``)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ScoreSheet:
        data = json.loads(text)
        tests = [TestScore(**t) for t in data["tests"]]
        return cls(tests, list(data["notes"]), data["seconds"], bool(data.get("flagged")))

    def scores(self) -> dict[str, float]:
        return {t.grade_id: t.score for t in self.tests}
