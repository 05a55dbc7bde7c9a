"""The recipe's sanity checks against hand computations, explicit Jacobians and handmade models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.sanity import (
    BaselineComparison,
    LayerStats,
    batch_dependence,
    dead_relu_fraction,
    expected_initial_loss,
    initial_loss,
    input_independent_baseline,
    layer_statistics,
    mixes_batch,
    overfit_one_batch,
    parameters_snapshot,
    update_weight_ratio,
)


def mlp(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)


class ViewInsteadOfPermute(nn.Module):
    def __init__(self):
        super().__init__()
        self.step = nn.Linear(3, 4)

    def forward(self, x):
        n, t, d = x.shape
        return self.step(x.view(t, n, d)).sum(0)


class PermuteCorrectly(ViewInsteadOfPermute):
    def forward(self, x):
        return self.step(x.permute(1, 0, 2)).sum(0)


# --------------------------------------------------------------------------------------------------
# loss at init
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "value"), [(2, 0.6931), (10, 2.3026), (100, 4.6052), (1000, 6.9078)])
def test_expected_initial_loss_matches_the_table(c, value):
    assert expected_initial_loss(c) == pytest.approx(value, abs=1e-4)


@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 5000))
def test_expected_initial_loss_is_the_cross_entropy_of_uniform_logits(c):
    logits = torch.zeros(3, c, dtype=torch.float64)
    target = torch.zeros(3, dtype=torch.long)
    assert expected_initial_loss(c) == pytest.approx(float(F.cross_entropy(logits, target)))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_expected_initial_loss_rejects_bad_class_counts(bad):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        expected_initial_loss(bad)


def test_initial_loss_of_a_zero_initialised_classifier_is_ln_c():
    model = nn.Linear(4, 10)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    x, y = torch.randn(8, 4), torch.randint(0, 10, (8,))
    assert initial_loss(model, x, y) == pytest.approx(math.log(10), rel=1e-6)
    assert model.weight.grad is None


# --------------------------------------------------------------------------------------------------
# overfit one batch, input-independent baseline
# --------------------------------------------------------------------------------------------------


def test_overfit_one_batch_drives_the_loss_to_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    history = overfit_one_batch(model, x, y, steps=200)
    assert len(history) == 200 and all(isinstance(v, float) for v in history)
    assert history[0] == pytest.approx(1.1, abs=0.3)
    assert F.cross_entropy(model(x), y).item() < 1e-2


def test_overfit_one_batch_rejects_bad_arguments():
    model, x, y = nn.Linear(2, 2), torch.randn(2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        overfit_one_batch(model, x, y, steps=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        overfit_one_batch(model, x, y, lr=0.0)


def test_input_independent_baseline_trains_on_the_data_and_on_zeros():
    seen = []

    def train(x, y):
        seen.append(x.clone())
        return float(x.abs().sum())

    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    result = input_independent_baseline(train, x, y)
    assert isinstance(result, BaselineComparison)
    assert result.real == pytest.approx(float(x.abs().sum())) and result.zeroed == 0.0
    assert torch.equal(seen[0], x) and torch.equal(seen[1], torch.zeros_like(x))


def test_input_independent_baseline_shows_the_gap_on_a_learnable_task():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=gen)
    y = (x[:, 0] > 0).long()

    def train(inputs, labels):
        torch.manual_seed(0)
        return overfit_one_batch(nn.Linear(4, 2), inputs, labels, steps=100, lr=0.05)[-1]

    result = input_independent_baseline(train, x, y)
    assert result.real < 0.5 * result.zeroed


# --------------------------------------------------------------------------------------------------
# batch dependence
# --------------------------------------------------------------------------------------------------


def jacobian_norms(model, x, index):
    """Oracle: the full Jacobian of model(x)[index].sum() in float64, reduced per sample."""
    model64 = model.to(torch.float64)
    jac = torch.autograd.functional.jacobian(lambda inp: model64(inp)[index].sum(), x.double())
    return jac.reshape(x.shape[0], -1).norm(dim=1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), data=st.data())
def test_batch_dependence_matches_the_jacobian_for_an_independent_model(n, data):
    index = data.draw(st.integers(0, n - 1))
    model = mlp(seed=n)
    x = torch.randn(n, 6, dtype=torch.float64)
    got = batch_dependence(model.double(), x, index)
    assert torch.allclose(got, jacobian_norms(model, x, index), rtol=1e-10, atol=1e-12)
    assert (got[torch.arange(n) != index] == 0).all() and got[index] > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_dependence_finds_the_view_bug_and_not_the_permute(dtype):
    torch.manual_seed(0)
    buggy = ViewInsteadOfPermute().to(dtype)
    fixed = PermuteCorrectly().to(dtype)
    fixed.load_state_dict(buggy.state_dict())
    x = torch.randn(5, 4, 3, dtype=dtype)
    tol = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {}
    mixed = batch_dependence(buggy, x, 0)
    assert torch.allclose(mixed.double(), jacobian_norms(buggy, x, 0), **tol)
    assert (mixed[:4] > 0).all()
    clean = batch_dependence(fixed, x, 0)
    assert clean.dtype == dtype and (clean[1:] == 0).all() and clean[0] > 0


def test_batch_dependence_sees_batchnorm_mixing_in_train_mode_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    x = torch.randn(6, 6)
    assert (batch_dependence(model.train(), x, 2) > 0).all()
    eval_norms = batch_dependence(model.eval(), x, 2)
    assert (eval_norms[torch.arange(6) != 2] == 0).all()
    assert mixes_batch(model.train(), x) and not mixes_batch(model.eval(), x)


def test_batch_dependence_leaves_the_input_and_parameter_grads_alone():
    model, x = mlp(), torch.randn(4, 6)
    batch_dependence(model, x, 1)
    assert not x.requires_grad and x.grad is None
    assert all(p.grad is None for p in model.parameters())


def test_batch_dependence_of_an_input_free_model_is_zero():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 3)

    norms = batch_dependence(Constant(), torch.randn(4, 2), 0)
    assert torch.equal(norms, torch.zeros(4))


def test_batch_dependence_runs_on_the_meta_device():
    model = mlp().to("meta")
    x = torch.empty(5, 6, device="meta")
    norms = batch_dependence(model, x, 3)
    assert norms.device.type == "meta" and norms.shape == (5,)


def test_batch_dependence_under_bfloat16_autocast_stays_close():
    model, x = mlp(), torch.randn(5, 6)
    reference = batch_dependence(model, x, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = batch_dependence(model, x, 2)
    assert torch.allclose(low.float(), reference, rtol=5e-2, atol=1e-2)


def test_batch_dependence_rejects_bad_inputs():
    with pytest.raises(ValueError, match="floating-point batch"):
        batch_dependence(nn.Embedding(5, 3), torch.tensor([1, 2]), 0)
    with pytest.raises(ValueError, match=r"index must be in \[0, 4\)"):
        batch_dependence(mlp(), torch.randn(4, 6), 4)


def test_mixes_batch_checks_a_few_samples_of_a_large_batch():
    torch.manual_seed(0)
    assert not mixes_batch(mlp(), torch.randn(20, 6))
    assert mixes_batch(ViewInsteadOfPermute(), torch.randn(20, 4, 3))


# --------------------------------------------------------------------------------------------------
# update/weight ratio
# --------------------------------------------------------------------------------------------------


def test_update_weight_ratio_of_an_sgd_step_is_lr_grad_over_weight():
    model = mlp(dtype=torch.float64)
    snapshot = parameters_snapshot(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    F.cross_entropy(model(torch.randn(8, 6, dtype=torch.float64)), torch.arange(8) % 3).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    optimizer.step()
    ratios = update_weight_ratio(model, snapshot)
    assert set(ratios) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, ratio in ratios.items():
        expected = 1e-2 * grads[name].norm().item() / snapshot[name].norm().item()
        assert ratio == pytest.approx(expected, rel=1e-9)


def test_update_weight_ratio_of_a_zero_parameter():
    model = nn.Linear(3, 2)
    nn.init.zeros_(model.bias)
    snapshot = parameters_snapshot(model)
    assert update_weight_ratio(model, snapshot)["bias"] == 0.0
    with torch.no_grad():
        model.bias += 1.0
    assert update_weight_ratio(model, snapshot)["bias"] == math.inf


def test_parameters_snapshot_copies_only_trainable_parameters():
    model = mlp()
    model[0].weight.requires_grad_(False)
    snapshot = parameters_snapshot(model)
    assert "0.weight" not in snapshot
    with torch.no_grad():
        model[2].weight.add_(1.0)
    assert not torch.equal(snapshot["2.weight"], model[2].weight)


def test_update_weight_ratio_rejects_a_foreign_snapshot():
    with pytest.raises(ValueError, match="snapshot has parameters the model does not"):
        update_weight_ratio(nn.Linear(2, 2), {"other.weight": torch.zeros(2)})


# --------------------------------------------------------------------------------------------------
# dead ReLUs and layer statistics
# --------------------------------------------------------------------------------------------------


def test_dead_relu_fraction_counts_units_never_active():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU())
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([-100.0, -100.0, 100.0, 100.0]))
        model[2].bias.fill_(100.0)
    fractions = dead_relu_fraction(model, torch.randn(10, 3))
    assert fractions == {"1": 0.5, "3": 0.0}
    assert not model[1]._forward_hooks


def test_dead_relu_fraction_counts_conv_channels():
    conv = nn.Conv2d(1, 4, 3)
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([-100.0, 100.0, 100.0, 100.0]))
    model = nn.Sequential(conv, nn.ReLU(inplace=True))
    assert dead_relu_fraction(model, torch.randn(2, 1, 6, 6)) == {"1": 0.25}


def test_dead_relu_fraction_reports_a_reused_relu_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.act = nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()
            with torch.no_grad():
                self.a.bias.fill_(100.0)
                self.b.bias.fill_(-1000.0)

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    assert dead_relu_fraction(Twice(), torch.randn(4, 2)) == {"act#0": 0.0, "act#1": 1.0}


def test_layer_statistics_match_manual_hooks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])
    stats = layer_statistics(model, x, y)
    assert [s.name for s in stats] == ["0", "2"] and all(isinstance(s, LayerStats) for s in stats)
    assert all(p.grad is None for p in model.parameters())

    hidden_pre = model[0](x)
    hidden_pre.retain_grad()
    out = model[2](torch.relu(hidden_pre))
    out.retain_grad()
    F.cross_entropy(out, y).backward()
    assert stats[0].kind == "Linear"
    assert stats[0].activation_mean == pytest.approx(hidden_pre.mean().item(), rel=1e-5)
    assert stats[0].activation_std == pytest.approx(hidden_pre.std().item(), rel=1e-5)
    assert stats[0].output_grad_norm == pytest.approx(hidden_pre.grad.norm().item(), rel=1e-5)
    assert stats[1].output_grad_norm == pytest.approx(out.grad.norm().item(), rel=1e-5)
    for stat, layer in zip(stats, [model[0], model[2]], strict=True):
        assert stat.weight_grad_norm == pytest.approx(layer.weight.grad.norm().item(), rel=1e-5)
        assert stat.weight_norm == pytest.approx(layer.weight.norm().item(), rel=1e-6)


def test_layer_statistics_handle_conv_layers_and_frozen_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    model[0].weight.requires_grad_(False)
    stats = layer_statistics(model, torch.randn(3, 1, 6, 6), torch.tensor([0, 1, 2]))
    assert [s.kind for s in stats] == ["Conv2d", "Linear"]
    assert stats[0].weight_grad_norm == 0.0 and stats[1].weight_grad_norm > 0
    assert not model[0]._forward_hooks
