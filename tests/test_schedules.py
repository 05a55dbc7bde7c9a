"""Cosine restarts against torch's CosineAnnealingWarmRestarts; cycle boundaries; LR range test."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.schedules import (
    LRRangeResult,
    cosine_restart_lr,
    cycle_boundaries,
    lr_range_test,
)


def torch_lrs(steps, base_lr, T_0, T_mult, eta_min):
    """The lr of each optimizer step with the scheduler stepped once per step (the oracle)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=T_0, T_mult=T_mult, eta_min=eta_min
    )
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("T_mult", [1, 2, 3])
@pytest.mark.parametrize("T_0", [1, 5, 10])
@pytest.mark.parametrize("eta_min", [0.0, 1e-3])
def test_matches_torch_scheduler_stepped_once_per_step(T_0, T_mult, eta_min):
    expected = torch_lrs(200, 0.1, T_0, T_mult, eta_min)
    got = [cosine_restart_lr(s, 0.1, T_0, T_mult, eta_min) for s in range(200)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("T_mult", [1, 2])
def test_matches_torch_scheduler_for_fractional_steps(T_mult):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=4, T_mult=T_mult, eta_min=0.01
    )
    for k in range(1, 120):
        epoch = k * 0.37  # never exactly on a restart, where torch's closed form may round
        optimizer.step()
        scheduler.step(epoch)
        expected = optimizer.param_groups[0]["lr"]
        assert cosine_restart_lr(epoch, 0.2, 4, T_mult, 0.01) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    step=st.floats(0, 1e4),
    base_lr=st.floats(1e-4, 1.0),
    T_0=st.integers(1, 50),
    T_mult=st.integers(1, 4),
    eta_fraction=st.floats(0, 1),
)
def test_lr_stays_between_eta_min_and_base_lr(step, base_lr, T_0, T_mult, eta_fraction):
    eta_min = eta_fraction * base_lr
    lr = cosine_restart_lr(step, base_lr, T_0, T_mult, eta_min)
    assert eta_min - 1e-12 <= lr <= base_lr + 1e-12


@settings(max_examples=30, deadline=None)
@given(T_0=st.integers(1, 20), T_mult=st.integers(1, 3), total=st.integers(0, 500))
def test_lr_is_base_lr_at_every_cycle_boundary(T_0, T_mult, total):
    for boundary in cycle_boundaries(total, T_0, T_mult):
        assert cosine_restart_lr(boundary, 0.5, T_0, T_mult, 0.01) == pytest.approx(0.5)
        # just before the restart the lr is near eta_min
        before = cosine_restart_lr(boundary - 1e-6, 0.5, T_0, T_mult, 0.01)
        assert before == pytest.approx(0.01, abs=1e-6)


def test_cycle_boundaries_example_and_torch_restarts():
    assert cycle_boundaries(70, T_0=10, T_mult=2) == [10, 30, 70]
    assert cycle_boundaries(69, T_0=10, T_mult=2) == [10, 30]
    assert cycle_boundaries(25, T_0=5) == [5, 10, 15, 20, 25]
    assert cycle_boundaries(0, T_0=5) == []
    lrs = torch_lrs(100, 1.0, 3, 2, 0.0)
    restarts = [s for s in range(1, 100) if lrs[s] == 1.0]
    assert cycle_boundaries(99, 3, 2) == restarts


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": 1, "base_lr": 0.1, "T_0": 0}, "T_0 must be a positive integer"),
        ({"step": 1, "base_lr": 0.1, "T_0": 2.5}, "T_0 must be a positive integer"),
        ({"step": 1, "base_lr": 0.1, "T_0": 5, "T_mult": 0}, "T_mult must be an integer >= 1"),
        ({"step": 1, "base_lr": 0.1, "T_0": 5, "T_mult": 1.5}, "T_mult must be an integer >= 1"),
        ({"step": -1, "base_lr": 0.1, "T_0": 5}, "step must be >= 0"),
        ({"step": math.nan, "base_lr": 0.1, "T_0": 5}, "step must be >= 0"),
    ],
)
def test_cosine_restart_lr_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cosine_restart_lr(**kwargs)


def test_cycle_boundaries_rejects_bad_arguments():
    with pytest.raises(ValueError, match="total_steps must be a non-negative integer"):
        cycle_boundaries(-1, 5)
    with pytest.raises(ValueError, match="T_0 must be a positive integer"):
        cycle_boundaries(10, 0)


# --------------------------------------------------------------------------------------------------
# LR range test
# --------------------------------------------------------------------------------------------------


def regression_problem(seed=0, batches=8):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 1, generator=gen)
    data = []
    for _ in range(batches):
        x = torch.randn(32, 5, generator=gen)
        data.append((x, x @ w + 0.01 * torch.randn(32, 1, generator=gen)))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    return model, data


def test_restores_initial_weights_and_mode():
    model, data = regression_problem()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr_range_test(model, nn.functional.mse_loss, data, num_steps=30)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_lrs_are_exponentially_spaced_from_min_to_max():
    model, data = regression_problem()
    result = lr_range_test(
        model, nn.functional.mse_loss, data, min_lr=1e-5, max_lr=1e-2, num_steps=20
    )
    assert isinstance(result, LRRangeResult)
    assert len(result.lrs) == len(result.losses) == len(result.raw_losses) == 20
    assert result.lrs[0] == pytest.approx(1e-5)
    assert result.lrs[-1] == pytest.approx(1e-2)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:], strict=False)]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))


def test_smoothed_losses_are_the_bias_corrected_moving_average():
    model, data = regression_problem()
    result = lr_range_test(model, nn.functional.mse_loss, data, num_steps=25, smooth=0.2)
    avg = 0.0
    for i, (raw, smoothed) in enumerate(zip(result.raw_losses, result.losses, strict=True)):
        avg = 0.8 * avg + 0.2 * raw
        assert smoothed == pytest.approx(avg / (1 - 0.8 ** (i + 1)))


def test_stops_when_the_loss_diverges():
    model, data = regression_problem()
    result = lr_range_test(
        model, nn.functional.mse_loss, data, optimizer="sgd", min_lr=1e-4, max_lr=100.0
    )
    assert len(result.lrs) < 100
    last = result.losses[-1]
    assert not math.isfinite(last) or last > 4 * min(result.losses[:-1])


def test_suggested_lr_lies_where_the_loss_falls():
    model, data = regression_problem()
    result = lr_range_test(
        model, nn.functional.mse_loss, data, optimizer="sgd", min_lr=1e-5, max_lr=10.0
    )
    best = min(range(len(result.losses)), key=result.losses.__getitem__)
    assert result.lrs[0] <= result.suggested_lr <= result.lrs[best]
    assert result.suggested_lr in result.lrs


def test_cycles_a_short_list_but_stops_a_one_shot_iterator():
    model, data = regression_problem(batches=3)
    assert len(lr_range_test(model, nn.functional.mse_loss, data, num_steps=10).lrs) == 10
    one_shot = iter(data)
    assert len(lr_range_test(model, nn.functional.mse_loss, one_shot, num_steps=10).lrs) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "0 < min_lr < max_lr"),
        ({"min_lr": 0.0}, "0 < min_lr < max_lr"),
        ({"num_steps": 1}, "num_steps must be an integer >= 2"),
        ({"optimizer": "rmsprop"}, "optimizer must be 'adam' or 'sgd'"),
        ({"smooth": 0.0}, r"smooth must be in \(0, 1\]"),
        ({"diverge_factor": 1.0}, "diverge_factor must be > 1"),
    ],
)
def test_lr_range_test_rejects_bad_arguments(kwargs, match):
    model, data = regression_problem()
    with pytest.raises(ValueError, match=match):
        lr_range_test(model, nn.functional.mse_loss, data, **kwargs)


def test_lr_range_test_rejects_empty_batches():
    model, _ = regression_problem()
    with pytest.raises(ValueError, match="no \\(x, y\\) pair"):
        lr_range_test(model, nn.functional.mse_loss, [])
