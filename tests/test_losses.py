"""course_utils.losses against its oracles: torchvision, F.cross_entropy, F.kl_div, float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import sigmoid_focal_loss as torchvision_focal_loss

from course_utils.losses import (
    distillation_loss,
    flooded,
    label_smoothing_cross_entropy,
    label_smoothing_floor,
    sigmoid_focal_loss,
    smoothed_targets,
    softmax_focal_loss,
)

FLOAT_DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["none", "mean", "sum"]
FAST = settings(max_examples=30, deadline=None)


def tolerances(dtype: torch.dtype) -> dict[str, float]:
    return (
        {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    )


def random_logits(*shape: int, seed: int = 0, scale: float = 3.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=gen, dtype=dtype)


def random_binary(*shape: int, seed: int = 0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed + 1)
    return (torch.rand(shape, generator=gen) < 0.3).to(dtype)


def random_classes(n: int, c: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed + 2)
    return torch.randint(0, c, (n,), generator=gen)


def low_precision_logits(n: int, c: int, seed: int = 0):
    """The same (n, c) logits from a Linear layer in float32 and under bfloat16 autocast."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(8, c)
    x = torch.randn(n, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x)
    assert low.dtype == torch.bfloat16
    return layer(x), low


# --- sigmoid focal loss --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.75, 1.5), (0.0, 3.0), (1.0, 0.5)])
def test_sigmoid_focal_loss_matches_torchvision_on_random_inputs(dtype, reduction, alpha, gamma):
    x, y = random_logits(6, 7, dtype=dtype), random_binary(6, 7, dtype=dtype)
    got = sigmoid_focal_loss(x, y, alpha, gamma, reduction)
    expected = torchvision_focal_loss(x, y, alpha, gamma, reduction)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, **tolerances(dtype))


@pytest.mark.parametrize("alpha", [-1.0, -0.5])
def test_negative_alpha_turns_the_weighting_off_like_torchvision(alpha):
    x, y = random_logits(20, dtype=torch.float64), random_binary(20, dtype=torch.float64)
    expected = torchvision_focal_loss(x, y, -1, 2.0)
    torch.testing.assert_close(sigmoid_focal_loss(x, y, alpha, 2.0), expected)


def test_sigmoid_focal_loss_with_gamma_0_is_alpha_weighted_bce():
    x, y = random_logits(5, 4, dtype=torch.float64), random_binary(5, 4, dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = (0.25 * y + 0.75 * (1 - y)) * bce
    torch.testing.assert_close(sigmoid_focal_loss(x, y, 0.25, 0.0), expected)


def test_sigmoid_focal_loss_matches_the_papers_worked_example():
    # p_t = 0.9: CE = 0.1054, FL(gamma=2) = 0.00105, and with alpha = 0.25: 0.00026 (REFERENCE 1)
    x = torch.tensor([math.log(9.0)], dtype=torch.float64)
    y = torch.ones(1, dtype=torch.float64)
    assert sigmoid_focal_loss(x, y, -1, 0.0).item() == pytest.approx(0.1054, abs=1e-4)
    assert sigmoid_focal_loss(x, y, -1, 2.0).item() == pytest.approx(0.00105, abs=1e-5)
    assert sigmoid_focal_loss(x, y, 0.25, 2.0).item() == pytest.approx(0.00026, abs=1e-5)


def test_sigmoid_focal_loss_is_finite_with_finite_gradients_for_huge_logits():
    x = torch.tensor([100.0, -100.0, 100.0, -100.0, 30.0, -30.0], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    loss = sigmoid_focal_loss(x, y)
    torch.testing.assert_close(loss[[1, 2, 4, 5]], torch.tensor([25.0, 75.0, 22.5, 7.5]))
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()


@FAST
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=3),
    alpha=st.floats(0.0, 1.0),
    gamma=st.floats(0.0, 5.0),
    seed=st.integers(0, 10_000),
)
def test_sigmoid_focal_loss_matches_torchvision_for_any_shape_and_hyperparameters(
    shape, alpha, gamma, seed
):
    x = random_logits(*shape, seed=seed, dtype=torch.float64)
    y = random_binary(*shape, seed=seed, dtype=torch.float64)
    got = sigmoid_focal_loss(x, y, alpha, gamma)
    assert got.shape == x.shape
    torch.testing.assert_close(got, torchvision_focal_loss(x, y, alpha, gamma))
    assert (got >= 0).all()


@FAST
@given(alpha=st.floats(0.0, 1.0), gamma=st.floats(0.0, 5.0), seed=st.integers(0, 10_000))
def test_sigmoid_focal_loss_never_exceeds_alpha_weighted_bce(alpha, gamma, seed):
    x = random_logits(12, seed=seed, dtype=torch.float64)
    y = random_binary(12, seed=seed, dtype=torch.float64)
    bound = sigmoid_focal_loss(x, y, alpha, 0.0)
    assert (sigmoid_focal_loss(x, y, alpha, gamma) <= bound + 1e-12).all()


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.5])
def test_sigmoid_focal_loss_passes_gradcheck(gamma):
    x = random_logits(3, 4, dtype=torch.float64).requires_grad_()
    y = random_binary(3, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: sigmoid_focal_loss(z, y, 0.25, gamma), (x,))


@pytest.mark.parametrize(("reduction", "shape"), [("none", (4, 3)), ("mean", ()), ("sum", ())])
def test_sigmoid_focal_loss_runs_on_meta_tensors(reduction, shape):
    x, y = torch.empty(4, 3, device="meta"), torch.empty(4, 3, device="meta")
    out = sigmoid_focal_loss(x, y, reduction=reduction)
    assert out.device.type == "meta" and tuple(out.shape) == shape


def test_sigmoid_focal_loss_under_bfloat16_autocast_stays_close_to_float32():
    full, low = low_precision_logits(16, 5)
    y = random_binary(16, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = sigmoid_focal_loss(low, y, reduction="mean")
    assert got.dtype == torch.float32
    torch.testing.assert_close(
        got, sigmoid_focal_loss(full, y, reduction="mean"), rtol=0.05, atol=0.01
    )
    got.backward()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": torch.ones(4, 3, dtype=torch.long)}, "targets must be a float tensor"),
        ({"targets": torch.ones(4)}, r"targets must have the logits' shape \(4, 3\)"),
        ({"logits": torch.ones(4, 3, dtype=torch.long)}, "logits must be a floating-point"),
        ({"logits": [[1.0, 2.0, 3.0]]}, "logits must be a torch.Tensor, got list"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\].*got 1.5"),
        ({"alpha": float("nan")}, "alpha must be"),
        ({"gamma": -1.0}, "gamma must be a finite number >= 0, got -1.0"),
        ({"reduction": "avg"}, "reduction must be one of .*got 'avg'"),
    ],
)
def test_sigmoid_focal_loss_rejects_bad_input(kwargs, message):
    args = {"logits": torch.zeros(4, 3), "targets": torch.zeros(4, 3)} | kwargs
    with pytest.raises(ValueError, match=message):
        sigmoid_focal_loss(**args)


# --- softmax focal loss --------------------------------------------------------------------------


def softmax_focal_formula(x, y, alpha, gamma):
    """float64 oracle: -alpha_y (1 - p_y)^gamma log p_y with p = exp(x) / sum exp(x)."""
    x = x.double()
    p = x.exp() / x.exp().sum(1, keepdim=True)
    p_y = p[torch.arange(len(y)), y]
    weight = torch.ones_like(p_y) if alpha is None else alpha.double()[y]
    return -weight * (1 - p_y) ** gamma * p_y.log()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_softmax_focal_loss_matches_the_float64_formula(dtype, reduction, gamma, with_alpha):
    x, y = random_logits(9, 5, scale=2.0, dtype=dtype), random_classes(9, 5)
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15], dtype=dtype) if with_alpha else None
    got = softmax_focal_loss(x, y, alpha, gamma, reduction)
    expected = softmax_focal_formula(x, y, alpha, gamma)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected.to(dtype), **tolerances(dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_focal_loss_with_gamma_0_and_no_alpha_is_cross_entropy(reduction):
    x, y = random_logits(8, 6, dtype=torch.float64), random_classes(8, 6)
    expected = F.cross_entropy(x, y, reduction=reduction)
    torch.testing.assert_close(softmax_focal_loss(x, y, None, 0.0, reduction), expected)


def test_softmax_focal_loss_with_gamma_0_and_alpha_sums_like_weighted_cross_entropy():
    x, y = random_logits(8, 3, dtype=torch.float64), random_classes(8, 3)
    alpha = [0.2, 0.5, 0.3]
    expected = F.cross_entropy(x, y, weight=torch.tensor(alpha).double(), reduction="sum")
    torch.testing.assert_close(softmax_focal_loss(x, y, alpha, 0.0, "sum"), expected)


@FAST
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 6),
    gamma=st.floats(0.0, 5.0),
    seed=st.integers(0, 10_000),
)
def test_softmax_focal_loss_matches_the_formula_for_any_size(n, c, gamma, seed):
    x, y = random_logits(n, c, seed=seed, dtype=torch.float64), random_classes(n, c, seed)
    got = softmax_focal_loss(x, y, None, gamma, "none")
    torch.testing.assert_close(got, softmax_focal_formula(x, y, None, gamma))


def test_softmax_focal_loss_is_finite_for_huge_logits():
    x = torch.tensor([[200.0, -200.0, 0.0], [-200.0, 200.0, 0.0]], requires_grad=True)
    loss = softmax_focal_loss(x, torch.tensor([0, 0]), gamma=2.0, reduction="none")
    torch.testing.assert_close(loss, torch.tensor([0.0, 400.0]))
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gamma", [0.0, 2.0, 1.5])
def test_softmax_focal_loss_passes_gradcheck(gamma):
    x = random_logits(4, 3, dtype=torch.float64).requires_grad_()
    y, alpha = random_classes(4, 3), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: softmax_focal_loss(z, y, alpha, gamma), (x,))


@pytest.mark.parametrize(("reduction", "shape"), [("none", (4,)), ("mean", ())])
def test_softmax_focal_loss_runs_on_meta_tensors(reduction, shape):
    x = torch.empty(4, 5, device="meta")
    y = torch.empty(4, dtype=torch.long, device="meta")
    alpha = torch.empty(5, device="meta")
    out = softmax_focal_loss(x, y, alpha, reduction=reduction)
    assert out.device.type == "meta" and tuple(out.shape) == shape


def test_softmax_focal_loss_under_bfloat16_autocast_stays_close_to_float32():
    full, low = low_precision_logits(16, 5)
    y = random_classes(16, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = softmax_focal_loss(low, y)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, softmax_focal_loss(full, y), rtol=0.05, atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": torch.zeros(4)}, "targets must be int64 class indices"),
        ({"targets": torch.zeros(3, dtype=torch.long)}, r"targets must have shape \(4,\)"),
        ({"targets": torch.tensor([0, 1, 5, 2])}, r"class indices in \[0, 5\), got .*\[0, 5\]"),
        ({"targets": torch.tensor([0, -1, 2, 2])}, r"class indices in \[0, 5\)"),
        ({"logits": torch.zeros(4, 5, 2)}, r"logits must have shape \(N, C\)"),
        (
            {"alpha": torch.ones(4)},
            r"alpha must be None or float per-class weights of shape \(5,\)",
        ),
        ({"gamma": float("inf")}, "gamma must be a finite number >= 0"),
        ({"reduction": None}, "reduction must be one of"),
    ],
)
def test_softmax_focal_loss_rejects_bad_input(kwargs, message):
    args = {"logits": torch.zeros(4, 5), "targets": torch.zeros(4, dtype=torch.long)} | kwargs
    with pytest.raises(ValueError, match=message):
        softmax_focal_loss(**args)


# --- label smoothing -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 1.0])
def test_label_smoothing_matches_cross_entropy_with_label_smoothing(dtype, reduction, eps):
    x, y = random_logits(10, 7, dtype=dtype), random_classes(10, 7)
    got = label_smoothing_cross_entropy(x, y, eps, reduction)
    expected = F.cross_entropy(x, y, reduction=reduction, label_smoothing=eps)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, **tolerances(dtype))


@FAST
@given(
    n=st.integers(1, 8),
    c=st.integers(1, 12),
    eps=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_label_smoothing_is_cross_entropy_against_the_smoothed_targets(n, c, eps, seed):
    x, y = random_logits(n, c, seed=seed, dtype=torch.float64), random_classes(n, c, seed)
    q = smoothed_targets(y, c, eps, dtype=torch.float64)
    torch.testing.assert_close(q.sum(1), torch.ones(n, dtype=torch.float64))
    got = label_smoothing_cross_entropy(x, y, eps, "none")
    torch.testing.assert_close(got, -(q * F.log_softmax(x, 1)).sum(1))
    torch.testing.assert_close(got, F.cross_entropy(x, y, reduction="none", label_smoothing=eps))
    assert (got >= label_smoothing_floor(c, eps) - 1e-9).all()


def test_smoothed_targets_put_eps_over_c_on_every_class_including_the_true_one():
    q = smoothed_targets(torch.tensor([2, 0]), 10, 0.1)
    assert q.shape == (2, 10) and q.dtype == torch.get_default_dtype()
    assert q[0, 2].item() == pytest.approx(0.91) and q[1, 0].item() == pytest.approx(0.91)
    assert q[0, 0].item() == pytest.approx(0.01) and q[1, 9].item() == pytest.approx(0.01)


def test_label_smoothing_floor_is_about_half_a_nat_for_ten_classes():
    assert label_smoothing_floor(10, 0.1) == pytest.approx(0.5003, abs=1e-4)
    assert label_smoothing_floor(10, 0.0) == 0.0
    assert label_smoothing_floor(10, 1.0) == pytest.approx(math.log(10))
    assert label_smoothing_floor(1, 0.5) == 0.0


def test_label_smoothing_floor_is_the_loss_at_the_best_logits():
    y = torch.tensor([3, 1, 4])
    best_logits = smoothed_targets(y, 5, 0.2, dtype=torch.float64).log()
    loss = label_smoothing_cross_entropy(best_logits, y, 0.2)
    assert loss.item() == pytest.approx(label_smoothing_floor(5, 0.2), rel=1e-12)


def test_label_smoothing_is_finite_for_logits_far_apart():
    x = torch.tensor([[100.0, -100.0, 0.0], [-100.0, 100.0, 50.0]])
    got = label_smoothing_cross_entropy(x, torch.tensor([0, 2]), 0.1)
    torch.testing.assert_close(got, F.cross_entropy(x, torch.tensor([0, 2]), label_smoothing=0.1))


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_label_smoothing_passes_gradcheck(eps):
    x = random_logits(5, 4, dtype=torch.float64).requires_grad_()
    y = random_classes(5, 4)
    assert torch.autograd.gradcheck(lambda z: label_smoothing_cross_entropy(z, y, eps), (x,))


def test_label_smoothing_runs_on_meta_tensors():
    x = torch.empty(4, 5, device="meta")
    y = torch.empty(4, dtype=torch.long, device="meta")
    for reduction, shape in [("mean", ()), ("none", (4,))]:
        out = label_smoothing_cross_entropy(x, y, 0.1, reduction)
        assert out.device.type == "meta" and tuple(out.shape) == shape
    q = smoothed_targets(y, 5, 0.1)
    assert q.device.type == "meta" and q.shape == (4, 5)


def test_label_smoothing_under_bfloat16_autocast_stays_close_to_float32():
    full, low = low_precision_logits(16, 10)
    y = random_classes(16, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = label_smoothing_cross_entropy(low, y, 0.1)
        oracle = F.cross_entropy(low, y, label_smoothing=0.1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, oracle, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        got, label_smoothing_cross_entropy(full, y, 0.1), rtol=0.05, atol=0.01
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda x, y: label_smoothing_cross_entropy(x, y, 1.5),
            r"eps must be in \[0, 1\], got 1.5",
        ),
        (lambda x, y: label_smoothing_cross_entropy(x, y, -0.1), "eps must be in"),
        (lambda x, y: label_smoothing_cross_entropy(x, y.float()), "int64 class indices"),
        (lambda x, y: label_smoothing_cross_entropy(x, y + 3), r"class indices in \[0, 5\)"),
        (lambda x, y: label_smoothing_cross_entropy(x[0], y), r"logits must have shape \(N, C\)"),
        (lambda x, y: label_smoothing_cross_entropy(x, y, 0.1, "max"), "reduction must be"),
        (lambda x, y: smoothed_targets(y, 0, 0.1), "num_classes must be an int >= 1, got 0"),
        (lambda x, y: smoothed_targets(y, 2, 0.1), r"class indices in \[0, 2\)"),
        (lambda x, y: label_smoothing_floor(10, 2.0), "eps must be in"),
    ],
)
def test_label_smoothing_rejects_bad_input(call, message):
    x, y = torch.zeros(4, 5), torch.tensor([0, 1, 4, 2])
    with pytest.raises(ValueError, match=message):
        call(x, y)


# --- flooding ------------------------------------------------------------------------------------


def loss_and_gradient(value: float, b: float, dtype=torch.float64):
    w = torch.tensor([0.3, -1.2, 0.7], dtype=dtype, requires_grad=True)
    plain = (w**2).mean()
    loss = plain * (value / plain.item())
    (plain_grad,) = torch.autograd.grad(loss, w, retain_graph=True)
    out = flooded(loss, b)
    (grad,) = torch.autograd.grad(out, w)
    return out, grad, plain_grad


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_flooding_leaves_a_loss_above_the_flood_level_unchanged(dtype):
    out, grad, plain_grad = loss_and_gradient(0.8, 0.3, dtype)
    assert out.item() == pytest.approx(0.8, rel=1e-6)
    torch.testing.assert_close(grad, plain_grad)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_flooding_flips_the_gradient_below_the_flood_level(dtype):
    out, grad, plain_grad = loss_and_gradient(0.05, 0.2, dtype)
    assert out.item() == pytest.approx(0.35, rel=1e-6)
    torch.testing.assert_close(grad, -plain_grad)
    assert grad.abs().sum() > 0  # not a clamp


@FAST
@given(
    values=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=8),
    b=st.floats(0.0, 5.0),
)
def test_flooding_is_abs_of_loss_minus_b_plus_b_elementwise(values, b):
    loss = torch.tensor(values, dtype=torch.float64)
    expected = torch.where(loss >= b, loss, 2 * b - loss)
    torch.testing.assert_close(flooded(loss, b), expected)
    assert (flooded(loss, b) >= b - 1e-12).all()


def test_flooding_passes_gradcheck_away_from_the_kink():
    loss = torch.tensor([0.05, 0.9, 0.4, 0.11], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: flooded(z, 0.2), (loss,))


def test_flooding_runs_on_meta_tensors():
    out = flooded(torch.empty((), device="meta"), 0.1)
    assert out.device.type == "meta" and out.shape == ()


def test_flooding_under_bfloat16_autocast_stays_close_to_float32():
    full, low = low_precision_logits(16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = flooded(low.square().mean(), 0.05)
    torch.testing.assert_close(
        got.float(), flooded(full.square().mean(), 0.05), rtol=0.05, atol=0.01
    )


@pytest.mark.parametrize(
    ("loss", "b", "message"),
    [
        (torch.tensor(0.5), -0.1, "flood_level must be a finite number >= 0, got -0.1"),
        (torch.tensor(0.5), float("nan"), "flood_level must be a finite number >= 0"),
        (torch.tensor(0.5), "0.1", "flood_level must be"),
        (0.5, 0.1, "loss must be a torch.Tensor, got float"),
        (torch.tensor(1), 0.1, "loss must be a floating-point tensor"),
    ],
)
def test_flooding_rejects_bad_input(loss, b, message):
    with pytest.raises(ValueError, match=message):
        flooded(loss, b)


# --- distillation --------------------------------------------------------------------------------


def soft_term_formula(s, t, temperature):
    """float64 oracle: T^2 mean_n sum_c p_c log(p_c / q_c), p = softmax(t/T), q = softmax(s/T)."""
    s, t = s.double() / temperature, t.double() / temperature
    p = t.exp() / t.exp().sum(1, keepdim=True)
    q = s.exp() / s.exp().sum(1, keepdim=True)
    return temperature**2 * (p * (p.log() - q.log())).sum(1).mean()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_distillation_soft_term_matches_kl_div_batchmean(dtype, temperature):
    s, t = random_logits(6, 5, seed=1, dtype=dtype), random_logits(6, 5, seed=2, dtype=dtype)
    got = distillation_loss(s, t, temperature=temperature)
    kl = F.kl_div(
        F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean"
    )
    assert got.dtype == dtype and got.shape == ()
    torch.testing.assert_close(got, temperature**2 * kl, **tolerances(dtype))
    torch.testing.assert_close(
        got, soft_term_formula(s, t, temperature).to(dtype), **tolerances(dtype)
    )


@pytest.mark.parametrize("soft_weight", [0.0, 0.25, 0.5, 1.0])
def test_distillation_with_targets_mixes_soft_and_hard_terms(soft_weight):
    s, t = (
        random_logits(8, 4, seed=3, dtype=torch.float64),
        random_logits(8, 4, seed=4, dtype=torch.float64),
    )
    y = random_classes(8, 4)
    got = distillation_loss(s, t, y, temperature=3.0, soft_weight=soft_weight)
    expected = soft_weight * soft_term_formula(s, t, 3.0) + (1 - soft_weight) * F.cross_entropy(
        s, y
    )
    torch.testing.assert_close(got, expected)


@FAST
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 8),
    temperature=st.floats(0.25, 8.0),
    seed=st.integers(0, 10_000),
)
def test_distillation_soft_term_matches_the_formula_and_is_nonnegative(n, c, temperature, seed):
    s = random_logits(n, c, seed=seed, dtype=torch.float64)
    t = random_logits(n, c, seed=seed + 7, dtype=torch.float64)
    got = distillation_loss(s, t, temperature=temperature)
    torch.testing.assert_close(got, soft_term_formula(s, t, temperature))
    assert got >= -1e-12
    assert distillation_loss(s, s, temperature=temperature).abs() < 1e-12


def test_distillation_is_finite_for_huge_logits():
    s = torch.tensor([[200.0, -200.0, 0.0]], requires_grad=True)
    t = torch.tensor([[-200.0, 200.0, 0.0]])
    got = distillation_loss(s, t, temperature=1.0)
    oracle = F.kl_div(
        F.log_softmax(s, 1), F.log_softmax(t, 1), reduction="batchmean", log_target=True
    )
    torch.testing.assert_close(got, oracle)
    got.backward()
    assert torch.isfinite(s.grad).all()


def test_distillation_passes_gradcheck_for_student_and_teacher():
    s = random_logits(3, 4, seed=5, dtype=torch.float64).requires_grad_()
    t = random_logits(3, 4, seed=6, dtype=torch.float64).requires_grad_()
    y = random_classes(3, 4)
    assert torch.autograd.gradcheck(
        lambda a, b: distillation_loss(a, b, y, temperature=2.5, soft_weight=0.3), (s, t)
    )


def test_distillation_runs_on_meta_tensors():
    s, t = torch.empty(4, 5, device="meta"), torch.empty(4, 5, device="meta")
    y = torch.empty(4, dtype=torch.long, device="meta")
    for out in (distillation_loss(s, t), distillation_loss(s, t, y)):
        assert out.device.type == "meta" and out.shape == ()


def test_distillation_under_bfloat16_autocast_stays_close_to_float32():
    full, low = low_precision_logits(16, 10, seed=0)
    teacher = random_logits(16, 10, seed=9)
    y = random_classes(16, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = distillation_loss(low, teacher, y)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, distillation_loss(full, teacher, y), rtol=0.05, atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature must be a finite number > 0, got 0.0"),
        ({"temperature": -2.0}, "temperature must be a finite number > 0"),
        ({"soft_weight": 1.5}, r"soft_weight must be in \[0, 1\], got 1.5"),
        (
            {"teacher_logits": torch.zeros(4, 6)},
            r"both have shape \(N, C\), got \(4, 5\) and \(4, 6\)",
        ),
        ({"student_logits": torch.zeros(5)}, r"both have shape \(N, C\)"),
        ({"targets": torch.zeros(4)}, "int64 class indices"),
        ({"targets": torch.tensor([0, 1, 2, 9])}, r"class indices in \[0, 5\)"),
        (
            {"student_logits": torch.zeros(4, 5, dtype=torch.long)},
            "student_logits must be a floating",
        ),
    ],
)
def test_distillation_rejects_bad_input(kwargs, message):
    args = {"student_logits": torch.zeros(4, 5), "teacher_logits": torch.zeros(4, 5)} | kwargs
    with pytest.raises(ValueError, match=message):
        distillation_loss(**args)
