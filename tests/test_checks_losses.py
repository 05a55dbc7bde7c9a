"""Loss checks: the reference passes, each classic bug fails with its hint, stderr stays empty."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops

import course_utils.losses
from course_utils.checks.losses import (
    check_distillation_loss,
    check_flooding,
    check_focal_loss,
    check_label_smoothing,
)

DEVICE_HINT = "without device="
HOST_READ_HINT = "reads tensor values on the host"
NOT_IMPLEMENTED = "not implemented yet"
DETACHED = "not connected to the input by autograd"


def run(check, fn, capsys, *, hidden=False):
    result = check(fn, hidden=hidden)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == result.lines
    text = "\n".join(result.lines)
    return result, text


def assert_fails_with(check, fn, hint, capsys, *, hidden=False):
    result, text = run(check, fn, capsys, hidden=hidden)
    assert not result, text
    assert all(line.startswith("FAIL ") for line in result.lines)
    assert hint in text, text
    with pytest.raises(AssertionError, match="FAIL"):
        result.require()


def assert_passes(check, fn, capsys, *, hidden=False):
    result, text = run(check, fn, capsys, hidden=hidden)
    assert result, text
    assert len(result.lines) == 1 and result.lines[0].startswith("PASS ")
    result.require()


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# --- focal loss ----------------------------------------------------------------------------------


def _focal_parts(x, y, alpha):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return p, ce, p_t, alpha_t


def focal_reference(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_with_logsigmoid(logits, targets, alpha=0.25, gamma=2.0):
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    log_p_t = torch.where(targets > 0.5, log_p, log_not_p)
    alpha_t = torch.where(targets > 0.5, alpha, 1 - alpha)
    return -alpha_t * (1 - log_p_t.exp()) ** gamma * log_p_t


def focal_no_alpha(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return (1 - p_t) ** gamma * ce


def focal_alpha_positives_only(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha * y * (1 - p_t) ** gamma * ce


def focal_alpha_swapped(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return (1 - alpha_t) * (1 - p_t) ** gamma * ce


def focal_alpha_everywhere(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha * (1 - p_t) ** gamma * ce


def focal_p_t_gamma(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * p_t**gamma * ce


def focal_one_minus_p(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p) ** gamma * ce


def focal_softmax(x, y, alpha=0.25, gamma=2.0):
    p = torch.softmax(x, dim=-1)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def focal_softmax_bce(x, y, alpha=0.25, gamma=2.0):
    p = torch.softmax(x, dim=-1)
    ce = F.binary_cross_entropy(p, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    return (alpha * y + (1 - alpha) * (1 - y)) * (1 - p_t) ** gamma * ce


def focal_mean(x, y, alpha=0.25, gamma=2.0):
    return focal_reference(x, y, alpha, gamma).mean()


def focal_bce_mean(x, y, alpha=0.25, gamma=2.0):
    p, _, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p_t) ** gamma * F.binary_cross_entropy_with_logits(x, y)


def focal_naive_log(x, y, alpha=0.25, gamma=2.0):
    p, _, p_t, alpha_t = _focal_parts(x, y, alpha)
    log_term = y * torch.log(p) + (1 - y) * torch.log(1 - p)
    return -alpha_t * (1 - p_t) ** gamma * log_term


def focal_clamped_probabilities(x, y, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x).clamp(1e-6, 1 - 1e-6)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def focal_wrong_device(x, y, alpha=0.25, gamma=2.0):
    ones = torch.ones(x.shape)
    p, ce, p_t, _ = _focal_parts(x, y, alpha)
    return (alpha * y + (1 - alpha) * (ones - y)) * (1 - p_t) ** gamma * ce


def focal_detached(x, y, alpha=0.25, gamma=2.0):
    return focal_reference(x, y, alpha, gamma).detach()


def focal_calls_torchvision(x, y, alpha=0.25, gamma=2.0):
    return torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma)


def focal_calls_course_utils(x, y, alpha=0.25, gamma=2.0):
    return course_utils.losses.sigmoid_focal_loss(x, y, alpha, gamma)


def focal_calls_torchvision_indirectly(x, y, alpha=0.25, gamma=2.0):
    # the name is built at run time, so only the tripwire sees it
    return getattr(torchvision.ops, "sigmoid" + "_focal_loss")(x, y, alpha, gamma)


def test_focal_check_passes_the_reference(capsys):
    assert_passes(check_focal_loss, focal_reference, capsys)
    assert_passes(check_focal_loss, focal_reference, capsys, hidden=True)


def test_focal_check_passes_a_differently_written_correct_answer(capsys):
    assert_passes(check_focal_loss, focal_with_logsigmoid, capsys, hidden=True)


def test_focal_check_passes_course_utils_reference_when_not_hidden(capsys):
    assert_passes(check_focal_loss, course_utils.losses.sigmoid_focal_loss, capsys)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (focal_no_alpha, "alpha_t is missing"),
        (focal_alpha_positives_only, "applied to the positives only"),
        (focal_alpha_swapped, "alpha_t is swapped"),
        (focal_alpha_everywhere, "alpha multiplies every element"),
        (focal_p_t_gamma, "modulating factor p_t**gamma"),
        (focal_one_minus_p, "(1 - p)**gamma for every element"),
        (focal_softmax, "probabilities from a softmax"),
        (focal_softmax_bce, "probabilities from a softmax"),
        (focal_mean, "reduced to one number"),
        (focal_bce_mean, "defaults to reduction='mean'"),
        (focal_naive_log, "overflow for large |x|"),
        (focal_clamped_probabilities, "overflow for large |x|"),
        (focal_wrong_device, DEVICE_HINT),
        (focal_detached, DETACHED),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_focal_check_names_the_bug(fn, hint, capsys):
    assert_fails_with(check_focal_loss, fn, hint, capsys)


def test_focal_check_stops_after_the_first_case_when_not_implemented(capsys):
    result, _ = run(check_focal_loss, not_implemented, capsys, hidden=True)
    assert len(result.lines) == 1


@pytest.mark.parametrize(
    ("fn", "banned"),
    [
        (focal_calls_torchvision, "torchvision.ops.sigmoid_focal_loss"),
        (focal_calls_course_utils, "course_utils.losses.sigmoid_focal_loss"),
        (focal_calls_torchvision_indirectly, "torchvision.ops.sigmoid_focal_loss"),
    ],
)
def test_focal_hidden_check_fails_answers_that_call_the_reference(fn, banned, capsys):
    assert_passes(check_focal_loss, fn, capsys)
    assert_fails_with(check_focal_loss, fn, banned, capsys, hidden=True)


def test_focal_tripwires_are_removed_after_the_check(capsys):
    original = torchvision.ops.sigmoid_focal_loss
    run(check_focal_loss, focal_calls_torchvision_indirectly, capsys, hidden=True)
    assert torchvision.ops.sigmoid_focal_loss is original
    assert course_utils.losses.sigmoid_focal_loss.__module__ == "course_utils.losses"


def test_focal_check_is_deterministic(capsys):
    first, _ = run(check_focal_loss, focal_no_alpha, capsys)
    second, _ = run(check_focal_loss, focal_no_alpha, capsys)
    assert first.lines == second.lines


# --- label smoothing -----------------------------------------------------------------------------


def _onehot(x, y):
    return F.one_hot(y, x.shape[1]).to(x.dtype)


def smoothing_reference(x, y, eps):
    c = x.shape[1]
    q = (1 - eps) * _onehot(x, y) + eps / c
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_from_two_terms(logits, targets, eps):
    uniform = -F.log_softmax(logits, dim=1).mean(dim=1).mean()
    return (1 - eps) * F.cross_entropy(logits, targets) + eps * uniform


def smoothing_with_scatter(x, y, eps):
    c = x.shape[1]
    q = torch.full_like(x, eps / c).scatter(1, y[:, None], 1 - eps + eps / c)
    return torch.sum(-q * torch.log_softmax(x, -1), dim=-1).mean()


def smoothing_c_minus_1(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / (x.shape[1] - 1)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_others_only(x, y, eps):
    onehot = _onehot(x, y)
    q = (1 - eps) * onehot + (1 - onehot) * eps / (x.shape[1] - 1)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_skips_true_class(x, y, eps):
    onehot = _onehot(x, y)
    q = (1 - eps) * onehot + (1 - onehot) * eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_no_uniform_part(x, y, eps):
    return (1 - eps) * F.cross_entropy(x, y)


def smoothing_none(x, y, eps):
    return F.cross_entropy(x, y)


def smoothing_softmax_twice(x, y, eps):
    return smoothing_reference(F.softmax(x, dim=1), y, eps)


def smoothing_log_probs_as_logits(x, y, eps):
    return smoothing_reference(torch.log(F.softmax(x, dim=1)), y, eps)


def smoothing_no_log(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_sum(x, y, eps):
    return smoothing_reference(x, y, eps) * x.shape[0]


def smoothing_mean_over_classes_too(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).mean()


def smoothing_per_sample(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1)


def smoothing_wrong_device(x, y, eps):
    c = x.shape[1]
    q = torch.full(x.shape, eps / c).scatter(1, y[:, None], 1 - eps + eps / c)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_calls_cross_entropy(x, y, eps):
    return F.cross_entropy(x, y, label_smoothing=eps)


def smoothing_calls_course_utils(x, y, eps):
    return course_utils.losses.label_smoothing_cross_entropy(x, y, eps)


def smoothing_calls_course_utils_indirectly(x, y, eps):
    return getattr(course_utils.losses, "label_smoothing" + "_cross_entropy")(x, y, eps)


def test_smoothing_check_passes_the_reference(capsys):
    assert_passes(check_label_smoothing, smoothing_reference, capsys)
    assert_passes(check_label_smoothing, smoothing_reference, capsys, hidden=True)


@pytest.mark.parametrize("fn", [smoothing_from_two_terms, smoothing_with_scatter])
def test_smoothing_check_passes_differently_written_correct_answers(fn, capsys):
    assert_passes(check_label_smoothing, fn, capsys, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (smoothing_c_minus_1, "eps/(C-1) instead of eps/C"),
        (smoothing_others_only, "eps spread over the other classes only"),
        (smoothing_skips_true_class, "skips the true class"),
        (smoothing_no_uniform_part, "only the (1 - eps) factor"),
        (smoothing_none, "no smoothing at all"),
        (smoothing_softmax_twice, "softmax applied twice"),
        (smoothing_log_probs_as_logits, "use F.log_softmax"),
        (smoothing_no_log, "the log is missing"),
        (smoothing_sum, "summed over the batch"),
        (smoothing_mean_over_classes_too, "averaged over the classes too"),
        (smoothing_per_sample, "one loss per sample"),
        (smoothing_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_smoothing_check_names_the_bug(fn, hint, capsys):
    assert_fails_with(check_label_smoothing, fn, hint, capsys)


@pytest.mark.parametrize(
    ("fn", "banned"),
    [
        (smoothing_calls_cross_entropy, "label_smoothing=..."),
        (smoothing_calls_course_utils, "course_utils.losses.label_smoothing_cross_entropy"),
        (
            smoothing_calls_course_utils_indirectly,
            "course_utils.losses.label_smoothing_cross_entropy",
        ),
    ],
)
def test_smoothing_hidden_check_fails_answers_that_call_the_reference(fn, banned, capsys):
    assert_passes(check_label_smoothing, fn, capsys)
    assert_fails_with(check_label_smoothing, fn, banned, capsys, hidden=True)


# --- flooding ------------------------------------------------------------------------------------


def flood_reference(loss, b):
    return (loss - b).abs() + b


def flood_with_where(loss, b):
    return torch.where(loss < b, 2 * b - loss, loss)


def flood_clamp(loss, b):
    return torch.clamp(loss, min=b)


def flood_python_max(loss, b):
    return max(loss, b)


def flood_abs_minus_b(loss, b):
    return abs(loss) - b


def flood_missing_plus_b(loss, b):
    return (loss - b).abs()


def flood_detached(loss, b):
    return ((loss - b).abs() + b).detach()


def flood_python_number(loss, b):
    return abs(loss.item() - b) + b


def flood_gradient_not_flipped(loss, b):
    return loss + 2 * (b - loss).clamp(min=0).detach()


def flood_detached_branch(loss, b):
    return torch.where(loss < b, (2 * b - loss).detach(), loss)


def flood_branches_on_value(loss, b):
    if loss > b:
        return loss
    return 2 * b - loss


def flood_wrong_device(loss, b):
    level = torch.full((1,), b)
    return ((loss - level).abs() + level).sum()


def flood_calls_course_utils(loss, b):
    return course_utils.losses.flooded(loss, b)


def test_flooding_check_passes_the_reference(capsys):
    assert_passes(check_flooding, flood_reference, capsys)
    assert_passes(check_flooding, flood_reference, capsys, hidden=True)


def test_flooding_check_passes_a_differently_written_correct_answer(capsys):
    assert_passes(check_flooding, flood_with_where, capsys, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (flood_clamp, "a clamp"),
        (flood_python_max, "a clamp"),
        (flood_abs_minus_b, "abs(loss) - b"),
        (flood_missing_plus_b, "without the + b"),
        (flood_detached, DETACHED),
        (flood_python_number, DETACHED),
        (flood_gradient_not_flipped, "gradient has the plain loss's sign"),
        (flood_detached_branch, "zero gradient below b"),
        (flood_branches_on_value, HOST_READ_HINT),
        (flood_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_flooding_check_names_the_bug(fn, hint, capsys):
    assert_fails_with(check_flooding, fn, hint, capsys)


def flood_without_meta_kernel(loss, b):
    if loss.device.type == "meta":
        raise NotImplementedError(
            "Could not run 'aten::abs' with arguments from the 'Meta' backend"
        )
    return flood_reference(loss, b)


def test_an_op_without_a_meta_kernel_is_not_blamed_on_the_learner(capsys):
    assert_passes(check_flooding, flood_without_meta_kernel, capsys)


def test_flooding_hidden_check_fails_answers_that_call_the_reference(capsys):
    assert_passes(check_flooding, flood_calls_course_utils, capsys)
    assert_fails_with(
        check_flooding, flood_calls_course_utils, "course_utils.losses.flooded", capsys, hidden=True
    )


# --- distillation --------------------------------------------------------------------------------


def distill_reference(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_log_target(student_logits, teacher_logits, temperature):
    log_q = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="sum", log_target=True) / student_logits.shape[0]
    return kl * temperature * temperature


def distill_by_hand(s, t, T):
    log_p = F.log_softmax(t / T, 1)
    per_sample = (log_p.exp() * (log_p - F.log_softmax(s / T, 1))).sum(1)
    return T**2 * per_sample.mean()


def distill_no_t2(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_times_t(s, t, T):
    return T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_reversed(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1), reduction="batchmean")


def distill_mean(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="mean")


def distill_sum(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum")


def distill_t_student_only(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean")


def distill_t_teacher_only(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_swapped(s, t, T):
    return T**2 * F.kl_div(F.softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean")


def distill_probabilities_as_input(s, t, T):
    return T**2 * F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_cross_entropy(s, t, T):
    soft_targets = F.softmax(t / T, 1)
    return -(soft_targets * F.log_softmax(s / T, 1)).sum(1).mean() * T**2


def distill_log_of_softmax(s, t, T):
    log_q = torch.log(F.softmax(s / T, 1))
    return T**2 * F.kl_div(log_q, F.softmax(t / T, 1), reduction="batchmean")


def distill_wrong_device(s, t, T):
    total = torch.zeros(s.shape[0])
    total = total + (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))).sum(
        1
    )
    return T**2 * total.mean()


def distill_calls_course_utils(s, t, T):
    return course_utils.losses.distillation_loss(s, t, temperature=T)


def test_distillation_check_passes_the_reference(capsys):
    assert_passes(check_distillation_loss, distill_reference, capsys)
    assert_passes(check_distillation_loss, distill_reference, capsys, hidden=True)


@pytest.mark.parametrize("fn", [distill_log_target, distill_by_hand])
def test_distillation_check_passes_differently_written_correct_answers(fn, capsys):
    assert_passes(check_distillation_loss, fn, capsys, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (distill_no_t2, "T**2 factor is missing"),
        (distill_times_t, "multiplied by T; the factor is T**2"),
        (distill_reversed, "KL in the wrong direction"),
        (distill_mean, "reduction='mean' divides by N*C"),
        (distill_sum, "summed over the batch"),
        (distill_t_student_only, "temperature applied to the student only"),
        (distill_t_teacher_only, "temperature applied to the teacher only"),
        (distill_swapped, "log_softmax and softmax swapped"),
        (distill_probabilities_as_input, "probabilities passed as F.kl_div's input"),
        (distill_cross_entropy, "soft cross-entropy"),
        (distill_log_of_softmax, "use F.log_softmax"),
        (distill_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_distillation_check_names_the_bug(fn, hint, capsys):
    assert_fails_with(check_distillation_loss, fn, hint, capsys)


def test_distillation_hidden_check_fails_answers_that_call_the_reference(capsys):
    assert_passes(check_distillation_loss, distill_calls_course_utils, capsys)
    assert_fails_with(
        check_distillation_loss,
        distill_calls_course_utils,
        "course_utils.losses.distillation_loss",
        capsys,
        hidden=True,
    )


# --- all checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [check_focal_loss, check_label_smoothing, check_flooding, check_distillation_loss],
)
def test_checks_report_an_answer_that_raises_without_raising(check, capsys):
    def broken(*args):
        raise RuntimeError("boom")

    result, text = run(check, broken, capsys, hidden=True)
    assert not result
    assert "raised RuntimeError: boom" in text


# --- gradients: right values, wrong gradient -------------------------------------------------------

GRADIENT = "the values are right but the gradient is not"


def focal_factor_under_no_grad(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    with torch.no_grad():
        factor = (1 - p_t) ** gamma
    return alpha_t * factor * ce


def focal_value_with_bce_gradient(x, y, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    return ce + (focal_reference(x, y, alpha, gamma) - ce).detach()


def _log_softmax_detached_normaliser(x):
    return x - torch.logsumexp(x, dim=1, keepdim=True).detach()


def smoothing_detached_normaliser(x, y, eps):
    c = x.shape[1]
    q = (1 - eps) * _onehot(x, y) + eps / c
    return -(q * _log_softmax_detached_normaliser(x)).sum(dim=1).mean()


def distill_detached_normaliser(s, t, T):
    log_q = _log_softmax_detached_normaliser(s / T)
    return T**2 * F.kl_div(log_q, F.softmax(t / T, 1), reduction="batchmean")


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_focal_loss, focal_factor_under_no_grad),
        (check_focal_loss, focal_value_with_bce_gradient),
        (check_label_smoothing, smoothing_detached_normaliser),
        (check_distillation_loss, distill_detached_normaliser),
    ],
)
def test_an_answer_with_the_right_values_and_a_wrong_gradient_fails(check, fn, capsys):
    assert_fails_with(check, fn, GRADIENT, capsys)


# --- the caller's inputs changed in place ---------------------------------------------------------

IN_PLACE = "changes its input in place"


def focal_targets_flipped_in_place(x, y, alpha=0.25, gamma=2.0):
    loss = focal_reference(x, y, alpha, gamma)
    y.mul_(2).sub_(1)  # "to +-1 for later": the caller's targets are gone
    return loss


def smoothing_logits_shifted_in_place(x, y, eps):
    with torch.no_grad():
        x -= x.max(dim=1, keepdim=True).values  # "for stability", on the caller's logits
    return smoothing_reference(x, y, eps)


def distill_teacher_scaled_in_place(s, t, T):
    t /= T  # the teacher's logits divided in the caller's tensor
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean")


@pytest.mark.parametrize(
    ("check", "fn", "name"),
    [
        (check_focal_loss, focal_targets_flipped_in_place, "targets"),
        (check_label_smoothing, smoothing_logits_shifted_in_place, "logits"),
        (check_distillation_loss, distill_teacher_scaled_in_place, "teacher_logits"),
    ],
)
def test_an_answer_that_changes_its_input_in_place_fails(check, fn, name, capsys):
    assert_fails_with(check, fn, f"{IN_PLACE} ({name})", capsys)


# --- the library's name in a comment, a string or a variable is not a call --------------------------


def focal_mentioning_the_library(x, y, alpha=0.25, gamma=2.0):
    # the same numbers as torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma)
    return focal_reference(x, y, alpha, gamma)


def smoothing_with_a_variable_named_label_smoothing(x, y, eps):
    label_smoothing = eps  # a variable, not F.cross_entropy(..., label_smoothing=...)
    return smoothing_reference(x, y, label_smoothing)


def smoothing_with_the_keyword_in_a_string(x, y, eps):
    _ = "F.cross_entropy(x, y, label_smoothing=eps) would be the library's version"
    return smoothing_reference(x, y, eps)


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_focal_loss, focal_mentioning_the_library),
        (check_label_smoothing, smoothing_with_a_variable_named_label_smoothing),
        (check_label_smoothing, smoothing_with_the_keyword_in_a_string),
    ],
)
def test_an_answer_that_only_mentions_the_library_passes_hidden(check, fn, capsys):
    assert_passes(check, fn, capsys, hidden=True)
