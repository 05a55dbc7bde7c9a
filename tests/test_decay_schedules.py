"""The copied ImageNet schedule in a short run: never fires per epoch, collapses per batch."""

from __future__ import annotations

import pytest

from course_utils.decay_schedules import copied_and_scaled_schedules, lr_curve


def curves(epochs: int = 5, steps: int = 55) -> dict[str, list[float]]:
    return {
        name: lr_curve(make, per_batch, epochs=epochs, steps_per_epoch=steps, lr=3e-4)
        for name, (make, per_batch) in copied_and_scaled_schedules(late_epoch=4).items()
    }


def test_the_copied_default_never_fires_in_a_short_run() -> None:
    rates = curves()
    assert len(rates["constant"]) == 5 * 55 and set(rates["constant"]) == {3e-4}
    assert rates["StepLR(30) per epoch (ImageNet default)"] == rates["constant"]


def test_stepped_per_batch_it_divides_by_ten_every_30_steps() -> None:
    rates = curves()["StepLR(30) per batch (unit changed)"]
    assert rates[29] == pytest.approx(3e-4) and rates[30] == pytest.approx(3e-5)
    assert rates[-1] == pytest.approx(3e-4 * 0.1 ** ((5 * 55 - 1) // 30))


def test_the_scaled_decay_fires_once_at_its_epoch() -> None:
    rates = curves()["StepLR(4) per epoch (scaled)"]
    assert rates[4 * 55 - 1] == pytest.approx(3e-4) and rates[4 * 55] == pytest.approx(3e-5)
    with pytest.raises(ValueError, match="late_epoch"):
        copied_and_scaled_schedules(0)
