"""course_utils.implementation_timing: paired timing rounds and agreement between implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.implementation_timing import agreement, paired_timings, timing_table


def _square(x: torch.Tensor) -> torch.Tensor:
    return x * x


def _pow(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2)


def _wrong(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def test_every_version_gets_one_time_per_round_and_slow_ones_fewer() -> None:
    calls = {"square": 0, "pow": 0}

    def counted(name, fn):
        def run(x):
            calls[name] += 1
            return fn(x)

        return run

    versions = {"square": counted("square", _square), "pow": counted("pow", _pow)}
    seconds, outputs = paired_timings(
        versions, (torch.arange(4.0),), rounds=4, slow={"square": 2}, repeats=3
    )
    assert seconds["square"].shape == (2,) and seconds["pow"].shape == (4,)
    assert calls == {"square": 2, "pow": 12}  # slow: once per round; others: repeats per round
    assert all((s > 0).all() for s in seconds.values())
    assert torch.equal(outputs["pow"], torch.tensor([0.0, 1.0, 4.0, 9.0]))


def test_agreement_flags_a_wrong_version_and_a_wrong_shape() -> None:
    x = torch.linspace(-2, 2, 9)
    outputs = {"square": _square(x), "pow": _pow(x), "wrong": _wrong(x), "short": _square(x[:3])}
    found = agreement(outputs, reference="square")
    assert found["square"] == (0.0, True) and found["pow"][1]
    assert not found["wrong"][1] and found["wrong"][0] == pytest.approx(
        float((x * x - 2 * x).abs().max())
    )
    assert found["short"] == (float("inf"), False)
    with pytest.raises(ValueError):
        agreement(outputs, reference="missing")


def test_table_has_one_line_per_version_and_the_reference_at_1x() -> None:
    seconds = {"loops": np.array([0.2, 0.4]), "fast": np.array([0.002, 0.004])}
    table = timing_table(seconds, {"loops": (0.0, True), "fast": (1e-6, True)}, reference="loops")
    lines = table.splitlines()
    assert len(lines) == 3 and "1x" in lines[1] and "100x" in lines[2]


def test_bad_rounds_are_refused() -> None:
    with pytest.raises(ValueError):
        paired_timings({"square": _square}, (torch.ones(1),), rounds=0)
