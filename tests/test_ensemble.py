"""Probability averaging against a float64 formula, ensemble prediction, snapshot ensembles."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.ensemble import (
    SnapshotCollector,
    average_probabilities,
    ensemble_predict,
    snapshot_models,
)
from course_utils.schedules import cycle_boundaries


def float64_average(logits):
    """Oracle: exp(z - logsumexp z) per model, then the arithmetic mean, in float64."""
    z = torch.stack([t.double() for t in logits])
    return (z - z.logsumexp(-1, keepdim=True)).exp().mean(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_the_float64_formula(dtype):
    gen = torch.Generator().manual_seed(0)
    logits = [5 * torch.randn(7, 4, generator=gen, dtype=dtype) for _ in range(3)]
    got = average_probabilities(logits)
    assert got.dtype == dtype and got.shape == (7, 4)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(got.double(), float64_average(logits), rtol=tol, atol=tol)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 5), n=st.integers(1, 6), c=st.integers(1, 6), scale=st.floats(0.1, 100))
def test_list_and_stacked_inputs_agree_and_rows_sum_to_one(m, n, c, scale):
    logits = [scale * torch.randn(n, c, dtype=torch.float64) for _ in range(m)]
    from_list = average_probabilities(logits)
    from_stack = average_probabilities(torch.stack(logits))
    assert torch.equal(from_list, from_stack)
    assert torch.allclose(from_list.sum(-1), torch.ones(n, dtype=torch.float64))
    assert torch.allclose(from_list, float64_average(logits), rtol=1e-12, atol=1e-14)


def test_large_logits_stay_finite():
    logits = [torch.tensor([[1000.0, 0.0]]), torch.tensor([[0.0, 1000.0]])]
    assert torch.equal(average_probabilities(logits), torch.tensor([[0.5, 0.5]]))


def test_gradcheck_in_float64():
    logits = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(average_probabilities, (logits,))


def test_runs_on_the_meta_device():
    logits = [torch.empty(5, 4, device="meta") for _ in range(3)]
    got = average_probabilities(logits)
    assert got.device.type == "meta" and got.shape == (5, 4)


def test_bfloat16_autocast_stays_close_to_float32():
    logits = [torch.randn(6, 5) for _ in range(4)]
    reference = average_probabilities(logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = average_probabilities([torch.nn.functional.linear(z, torch.eye(5)) for z in logits])
    assert torch.allclose(low.float(), reference, atol=2e-2)


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        ([], "at least one model"),
        ([torch.zeros(2, 3), torch.zeros(2, 4)], "same shape"),
        (torch.zeros(2, 3), r"\(M, N, C\)"),
        ([torch.zeros(3)], r"\(M, N, C\)"),
    ],
)
def test_rejects_bad_inputs(logits, match):
    with pytest.raises(ValueError, match=match):
        average_probabilities(logits)


def test_ensemble_predict_averages_in_eval_mode_and_restores_modes():
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3)) for _ in range(3)]
    models[0].eval()
    x = torch.randn(5, 4)
    got = ensemble_predict(models, x)
    assert not got.requires_grad
    with torch.no_grad():
        expected = average_probabilities([m.eval()(x) for m in models])
    assert torch.allclose(got, expected)
    models[1].train()
    models[2].train()
    ensemble_predict(models, x)
    assert [m.training for m in models] == [False, True, True]


def train_with_restarts(total_steps, T_0, T_mult, collector):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0, T_mult)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    saved_at, lrs_at_save = [], []
    for step in range(total_steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        scheduler.step()
        if collector.maybe_snapshot(step + 1, model):
            saved_at.append(step + 1)
            lrs_at_save.append(optimizer.param_groups[0]["lr"])
    return model, saved_at, lrs_at_save


def test_snapshot_collector_saves_once_per_cycle_at_the_restart():
    collector = SnapshotCollector.for_schedule(45, T_0=5, T_mult=2)
    model, saved_at, lrs_at_save = train_with_restarts(45, 5, 2, collector)
    assert saved_at == collector.steps == cycle_boundaries(45, 5, 2) == [5, 15, 35]
    assert lrs_at_save == pytest.approx([0.1, 0.1, 0.1])  # the next step restarts at base lr
    assert len(collector.states) == 3
    # deep copies: later training did not change the first snapshot
    assert not torch.equal(collector.states[0]["weight"], model.weight)
    assert not collector.maybe_snapshot(5, model) and len(collector.states) == 3


def test_snapshot_models_rebuild_the_members_in_eval_mode():
    collector = SnapshotCollector([2, 4])
    _, saved_at, _ = train_with_restarts(4, 2, 1, collector)
    assert saved_at == [2, 4]
    members = snapshot_models(lambda: nn.Linear(3, 2), collector.states)
    assert len(members) == 2 and not any(m.training for m in members)
    for member, state in zip(members, collector.states, strict=True):
        assert torch.equal(member.weight, state["weight"])
    x = torch.randn(4, 3)
    assert ensemble_predict(members, x).shape == (4, 2)


def test_snapshot_collector_rejects_bad_boundaries():
    with pytest.raises(ValueError, match="boundaries must be positive integers"):
        SnapshotCollector([0, 5])
    with pytest.raises(ValueError, match="boundaries must be positive integers"):
        SnapshotCollector([2.5])
