"""course_utils.init: prior bias, regression bias, LSTM forget bias, He init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from course_utils.init import (
    effective_forget_bias,
    effective_gate_biases,
    he_init_,
    init_final_bias_for_regression,
    init_final_bias_from_priors,
    set_lstm_forget_bias,
)


def _entropy(p: torch.Tensor) -> float:
    p = p.double() / p.sum()
    return float(-(p * p.log()).sum())


# ----------------------------------------------------------------------------------------------------
# Final bias from class priors
# ----------------------------------------------------------------------------------------------------


def test_multiclass_bias_is_log_of_normalised_priors():
    layer = nn.Linear(8, 4)
    init_final_bias_from_priors(layer, [10, 20, 30, 40])
    expected = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    torch.testing.assert_close(layer.bias.detach(), expected)
    torch.testing.assert_close(layer.bias.detach().softmax(0), torch.tensor([0.1, 0.2, 0.3, 0.4]))


@given(st.lists(st.floats(0.01, 100.0), min_size=2, max_size=12))
def test_softmax_of_the_bias_equals_the_priors(priors):
    layer = nn.Linear(3, len(priors), dtype=torch.float64)
    init_final_bias_from_priors(layer, priors)
    p = torch.tensor(priors, dtype=torch.float64)
    torch.testing.assert_close(layer.bias.detach().softmax(0), p / p.sum())


def test_initial_loss_equals_the_entropy_of_the_prior():
    priors = torch.tensor([0.5, 0.25, 0.15, 0.1])
    layer = init_final_bias_from_priors(nn.Linear(16, 4), priors, weight_scale=0.0)
    features = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.multinomial(priors, 4000, replacement=True, generator=torch.Generator())
    with torch.no_grad():
        logits = layer(features)
    expected_loss = float(-(F.log_softmax(logits, 1) * priors).sum(1).mean())
    assert expected_loss == pytest.approx(_entropy(priors), abs=1e-6)
    sampled = float(F.cross_entropy(logits, labels))
    assert sampled == pytest.approx(_entropy(priors), abs=0.05)
    assert _entropy(priors) < math.log(4)


def test_binary_single_logit_gets_the_log_odds_and_initial_loss_is_the_entropy():
    layer = init_final_bias_from_priors(nn.Linear(16, 1), 0.01)
    assert float(layer.bias.detach()) == pytest.approx(-4.59512, abs=1e-4)  # RetinaNet's prior bias
    layer = init_final_bias_from_priors(nn.Linear(16, 1), torch.tensor([0.1]), weight_scale=0.0)
    with torch.no_grad():
        logits = layer(torch.randn(10, 16))
    pi = torch.tensor(0.1)
    loss = pi * F.softplus(-logits) + (1 - pi) * F.softplus(logits)
    torch.testing.assert_close(loss.mean(), torch.tensor(0.32508), atol=1e-5, rtol=0)


def test_weight_scale_scales_the_weights_and_keeps_parameters_trainable():
    layer = nn.Linear(8, 3)
    weight = layer.weight.detach().clone()
    init_final_bias_from_priors(layer, [1, 1, 2], weight_scale=0.01)
    torch.testing.assert_close(layer.weight.detach(), weight * 0.01)
    assert isinstance(layer.bias, nn.Parameter) and layer.bias.requires_grad and layer.bias.is_leaf


def test_prior_bias_on_meta_and_float64_layers():
    layer = init_final_bias_from_priors(nn.Linear(4, 3, device="meta"), [0.2, 0.3, 0.5])
    assert layer.bias.device.type == "meta"
    layer = init_final_bias_from_priors(nn.Linear(4, 3, dtype=torch.float64), [0.2, 0.3, 0.5])
    assert layer.bias.dtype == torch.float64


@pytest.mark.parametrize(
    ("layer", "priors", "kwargs", "match"),
    [
        (nn.Linear(4, 3), [0.5, 0.5], {}, "one value per output \\(3\\), got 2"),
        (nn.Linear(4, 3), [0.5, 0.5, 0.0], {}, "priors must all be > 0"),
        (nn.Linear(4, 1), 1.2, {}, "positive rate π must be in \\(0, 1\\), got 1.2"),
        (nn.Linear(4, 1), [0.2, 0.8], {}, "needs one prior, the positive rate π, got 2"),
        (nn.Linear(4, 3, bias=False), [1, 1, 1], {}, "layer has no bias"),
        (nn.Conv2d(3, 3, 1), [1, 1, 1], {}, "must be an nn.Linear, got Conv2d"),
        (nn.Linear(4, 3), [1, 1, 1], {"weight_scale": -1.0}, "weight_scale must be >= 0"),
    ],
)
def test_prior_bias_rejects_bad_input(layer, priors, kwargs, match):
    with pytest.raises(ValueError, match=match):
        init_final_bias_from_priors(layer, priors, **kwargs)


# ----------------------------------------------------------------------------------------------------
# Regression bias
# ----------------------------------------------------------------------------------------------------


def test_regression_bias_is_the_target_mean_and_initial_mse_is_the_variance():
    gen = torch.Generator().manual_seed(1)
    targets = 50 + 3 * torch.randn(5000, 1, generator=gen)
    layer = init_final_bias_for_regression(nn.Linear(8, 1), targets.mean(), weight_scale=0.0)
    predictions = layer(torch.randn(5000, 8, generator=gen))
    mse = float(F.mse_loss(predictions, targets).detach())
    assert mse == pytest.approx(float(targets.var()), rel=1e-3)


def test_regression_bias_per_output_and_scalar():
    layer = init_final_bias_for_regression(nn.Linear(4, 3), [1.0, -2.0, 50.0])
    torch.testing.assert_close(layer.bias.detach(), torch.tensor([1.0, -2.0, 50.0]))
    layer = init_final_bias_for_regression(nn.Linear(4, 3), 7.5)
    torch.testing.assert_close(layer.bias.detach(), torch.full((3,), 7.5))
    layer = init_final_bias_for_regression(nn.Linear(4, 2, device="meta"), torch.tensor([1.0, 2]))
    assert layer.bias.device.type == "meta"
    with pytest.raises(ValueError, match="scalar or have one value per output \\(3\\), got shape"):
        init_final_bias_for_regression(nn.Linear(4, 3), [1.0, 2.0])


# ----------------------------------------------------------------------------------------------------
# LSTM forget bias
# ----------------------------------------------------------------------------------------------------

LSTMS = [
    lambda: nn.LSTM(4, 6),
    lambda: nn.LSTM(3, 5, num_layers=3, bidirectional=True),
    lambda: nn.LSTM(4, 8, num_layers=2, proj_size=3),
    lambda: nn.LSTMCell(5, 4),
    lambda: nn.LSTM(3, 4, dtype=torch.float64, bidirectional=True),
]


@pytest.mark.parametrize("make", LSTMS)
@pytest.mark.parametrize("value", [1.0, 2.0, 0.0])
def test_forget_bias_is_set_everywhere_and_nothing_else_changes(make, value):
    lstm = make()
    before = {k: v.clone() for k, v in effective_gate_biases(lstm).items()}
    weights = {n: p.detach().clone() for n, p in lstm.named_parameters() if "weight" in n}
    assert set_lstm_forget_bias(lstm, value) is lstm
    after = effective_gate_biases(lstm)
    assert set(after) == set(before)
    for key, gates in after.items():
        torch.testing.assert_close(gates[1], torch.full_like(gates[1], value))
        torch.testing.assert_close(gates[[0, 2, 3]], before[key][[0, 2, 3]])
    for name, param in lstm.named_parameters():
        assert isinstance(param, nn.Parameter) and param.requires_grad and param.is_leaf
        if name in weights:
            assert torch.equal(param.detach(), weights[name])


def test_effective_forget_bias_keys_name_layers_and_directions():
    lstm = set_lstm_forget_bias(nn.LSTM(2, 3, num_layers=2, bidirectional=True))
    assert sorted(effective_forget_bias(lstm)) == ["l0", "l0_reverse", "l1", "l1_reverse"]
    assert list(effective_forget_bias(nn.LSTMCell(2, 3))) == ["cell"]
    hidden = 3
    forget = slice(hidden, 2 * hidden)
    manual = lstm.bias_ih_l1_reverse[forget] + lstm.bias_hh_l1_reverse[forget]
    torch.testing.assert_close(effective_forget_bias(lstm)["l1_reverse"], manual.detach())


def test_forget_bias_of_one_keeps_the_forget_gate_mostly_open_at_init():
    torch.manual_seed(0)
    cell = set_lstm_forget_bias(nn.LSTMCell(4, 16))
    with torch.no_grad():
        gates = cell.bias_ih + cell.bias_hh  # zero input and state: the gates see their biases
    forget = torch.sigmoid(gates[16:32])
    torch.testing.assert_close(forget, torch.full_like(forget, 1 / (1 + math.exp(-1))))


def test_forget_bias_on_meta_modules():
    lstm = set_lstm_forget_bias(nn.LSTM(4, 6, num_layers=2, device="meta"))
    assert all(p.device.type == "meta" for p in lstm.parameters())


def test_forget_bias_rejects_bias_free_and_non_lstm_modules():
    with pytest.raises(ValueError, match="built with bias=False"):
        set_lstm_forget_bias(nn.LSTM(3, 4, bias=False))
    with pytest.raises(ValueError, match="expected an nn.LSTM or nn.LSTMCell, got GRU"):
        set_lstm_forget_bias(nn.GRU(3, 4))


# ----------------------------------------------------------------------------------------------------
# He init
# ----------------------------------------------------------------------------------------------------


def test_he_init_matches_kaiming_normal_and_zeroes_biases():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4, 5))
    twin = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4, 5))
    torch.manual_seed(3)
    assert he_init_(model) is model
    torch.manual_seed(3)
    for layer in (twin[0], twin[3]):
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        if ours.ndim > 1:
            torch.testing.assert_close(ours, theirs)
        else:
            assert bool((ours == 0).all())


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", 400), ("fan_out", 100)])
def test_he_init_gives_variance_two_over_fan(mode, fan):
    torch.manual_seed(4)
    layer = he_init_(nn.Linear(400, 100), mode=mode)
    assert float(layer.weight.detach().var()) == pytest.approx(2 / fan, rel=0.03)
    layer = he_init_(nn.Linear(400, 100), mode=mode, distribution="uniform")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert float(layer.weight.detach().abs().max()) <= bound
    assert float(layer.weight.detach().var()) == pytest.approx(2 / fan, rel=0.03)


def test_he_init_keeps_relu_activations_from_shrinking_with_depth():
    torch.manual_seed(5)
    layers = [nn.Linear(256, 256) for _ in range(20)]
    net = nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())])
    x = torch.randn(512, 256)
    default_scale = float(net(x).detach().pow(2).mean())
    he_init_(net)
    he_scale = float(net(x).detach().pow(2).mean())
    assert default_scale < 1e-3 < 0.2 < he_scale < 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "fan_avg"}, "mode must be one of"),
        ({"nonlinearity": "swish"}, "nonlinearity must be one of"),
        ({"distribution": "truncated"}, "distribution must be 'normal' or 'uniform'"),
    ],
)
def test_he_init_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        he_init_(nn.Linear(2, 2), **kwargs)
