"""The log of changes: kept by the evidence module's verdict, or by the plain comparison without one."""

from __future__ import annotations

from course_utils.change_log import ChangeLog
from course_utils.evidence import compare_paired


def test_a_change_is_kept_only_when_its_verdict_holds() -> None:
    log = ChangeLog()
    helps = compare_paired([0.9, 0.91, 0.92], [0.8, 0.8, 0.81], min_effect=0.01)
    noise = compare_paired([0.80, 0.82, 0.79], [0.81, 0.80, 0.81], min_effect=0.05)
    assert log.add("wider", "val accuracy", 0.80, 0.91, True, helps)["kept"]
    row = log.add("lr", "val accuracy", 0.81, 0.80, True, noise)
    assert not row["kept"] and "95% interval" in row["effect"]


def test_without_a_comparison_the_better_number_is_kept_and_said_to_be_one_run() -> None:
    log = ChangeLog()
    assert log.add("decay", "training loss", 0.30, 0.25, False)["kept"]
    assert not log.add("decay", "training loss", 0.30, 0.35, False)["kept"]
    table = log.markdown().splitlines()
    assert len(table) == 4 and table[2].startswith("| 1 | decay | training loss | 0.3 | 0.25 |")
    assert "one run" in table[2] and table[3].endswith("| no |")
