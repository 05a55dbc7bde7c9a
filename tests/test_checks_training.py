"""The training checks: the reference and other correct answers PASS, each classic bug FAILs with
its hint, unfinished or device-unsafe answers FAIL clearly, hidden tests catch calls to the
reference, and nothing is written to stderr."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import early_stopping, ensemble, sanity, schedules, tuning
from course_utils.checks import training as checks
from course_utils.checks._guards import WRONG_DEVICE_HINT


def run_check(capsys, check, answer, hidden=False):
    """Run ``check`` on ``answer``; return (result, stdout) and assert stderr stayed empty."""
    result = check(answer, hidden=hidden)
    out, err = capsys.readouterr()
    assert err == ""
    assert out.strip() == "\n".join(result.lines)
    return result, out


def assert_passes(capsys, check, answer, hidden=False):
    result, out = run_check(capsys, check, answer, hidden)
    assert result.passed, out
    assert out.startswith("PASS ") and out.count("\n") == 1


def assert_fails(capsys, check, answer, *fragments, hidden=False):
    result, out = run_check(capsys, check, answer, hidden)
    assert not result.passed
    assert out.startswith("FAIL ")
    for fragment in fragments:
        assert fragment in out, out
    with pytest.raises(AssertionError):
        result.require()
    return out


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# --------------------------------------------------------------------------------------------------
# expected initial loss
# --------------------------------------------------------------------------------------------------


def initial_loss_via_tensor(num_classes):
    return -torch.log(torch.tensor(1.0 / num_classes, dtype=torch.float64))


def initial_loss_calls_reference(num_classes):
    return sanity.expected_initial_loss(num_classes)


@pytest.mark.parametrize("hidden", [False, True])
def test_expected_initial_loss_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_expected_initial_loss, lambda c: math.log(c), hidden)
    assert_passes(capsys, checks.check_expected_initial_loss, initial_loss_via_tensor, hidden)
    assert_passes(capsys, checks.check_expected_initial_loss, lambda c: -np.log(1 / c), hidden)


def test_expected_initial_loss_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_expected_initial_loss, sanity.expected_initial_loss)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda c: math.log10(c), "log10 instead of the natural log"),
        (lambda c: math.log2(c), "log2 instead of the natural log"),
        (lambda c: 1 / c, "the probability 1/C"),
        (lambda c: math.log(1 / c), "wrong sign"),
        (lambda c: math.log(c - 1), "ln(C-1)"),
    ],
)
def test_expected_initial_loss_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_expected_initial_loss, answer, "num_classes=10", fragment)


def test_expected_initial_loss_rejects_non_numbers(capsys):
    assert_fails(
        capsys, checks.check_expected_initial_loss, lambda c: [math.log(c)], "single number"
    )


def test_expected_initial_loss_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_expected_initial_loss, not_implemented, "not implemented yet")


def test_expected_initial_loss_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_expected_initial_loss,
        initial_loss_calls_reference,
        "expected_initial_loss",
        "implement itself",
        hidden=True,
    )
    assert_fails(
        capsys,
        checks.check_expected_initial_loss,
        sanity.expected_initial_loss,
        "library function",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# batch independence
# --------------------------------------------------------------------------------------------------


def dependence_with_backward(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x)[index].sum().backward()
    return x.grad.flatten(1).norm(dim=1)


def dependence_loop(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    out = model(x)[index]
    (grad,) = torch.autograd.grad(out.sum(), x)
    return torch.stack([grad[n].pow(2).sum().sqrt() for n in range(x.shape[0])])


def dependence_sums_all_outputs(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.flatten(1).norm(dim=1)


def dependence_accumulates(model, x, index):
    x.requires_grad_(True)
    model(x)[index].sum().backward()
    return x.grad.detach().flatten(1).norm(dim=1)


def dependence_returns_gradient(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x)[index].sum().backward()
    return x.grad


def dependence_wrt_parameters(model, x, index):
    model.zero_grad()
    model(x)[index].sum().backward()
    return next(model.parameters()).grad


def dependence_wrt_all_parameters(model, x, index):
    return torch.autograd.grad(model(x)[index].sum(), list(model.parameters()))


def dependence_in_eval_mode(model, x, index):
    model.eval()
    return dependence_with_backward(model, x, index)


def dependence_squared(model, x, index):
    return dependence_with_backward(model, x, index) ** 2


def dependence_on_cpu(model, x, index):
    norms = torch.zeros(x.shape[0])
    grad = dependence_with_backward(model, x, index)
    return norms + grad


def dependence_calls_reference(model, x, index):
    return sanity.batch_dependence(model, x, index)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [dependence_with_backward, dependence_loop])
def test_batch_independence_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_batch_independence, answer, hidden)


def test_batch_independence_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_batch_independence, sanity.batch_dependence)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (dependence_sums_all_outputs, ["independent MLP", "sum of ALL outputs"]),
        (dependence_accumulates, ["two calls on the same x", "accumulated"]),
        (dependence_returns_gradient, ["returned the gradient itself"]),
        (dependence_wrt_parameters, ["with respect to the weights"]),
        (dependence_wrt_all_parameters, ["gradients with respect to the parameters"]),
        (dependence_in_eval_mode, ["BatchNorm in train mode", "switched to eval mode"]),
        (dependence_squared, ["squared norms"]),
    ],
)
def test_batch_independence_names_classic_bugs(capsys, answer, fragments):
    assert_fails(capsys, checks.check_batch_independence, answer, *fragments)


def test_batch_independence_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_batch_independence, not_implemented, "not implemented yet")


def test_batch_independence_catches_tensors_on_the_wrong_device(capsys):
    assert_fails(
        capsys, checks.check_batch_independence, dependence_on_cpu, "meta device", WRONG_DEVICE_HINT
    )


def test_batch_independence_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_batch_independence,
        dependence_calls_reference,
        "does not call the reference",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# overfit one batch
# --------------------------------------------------------------------------------------------------


def overfit_reference(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)


def overfit_sgd(model, x, y, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def overfit_without_zero_grad(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def overfit_keeps_tensors(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    return losses


def overfit_without_step(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
    return losses


def overfit_lr_too_low(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps, lr=1e-5)


def overfit_short_history(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)[:-1]


def overfit_calls_reference(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)


@pytest.mark.parametrize("hidden", [False, True])
def test_overfit_one_batch_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_overfit_one_batch, overfit_sgd, hidden)


def test_overfit_one_batch_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_overfit_one_batch, overfit_reference)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (overfit_without_zero_grad, "call optimizer.zero_grad()"),
        (overfit_keeps_tensors, "still attached to the graph"),
        (overfit_without_step, "did not train"),
        (overfit_lr_too_low, "learning rate is too low"),
        (overfit_short_history, "expected 200 losses"),
    ],
)
def test_overfit_one_batch_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_overfit_one_batch, answer, fragment)


def test_overfit_one_batch_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_overfit_one_batch, not_implemented, "not implemented yet")


def test_overfit_one_batch_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_overfit_one_batch,
        overfit_calls_reference,
        "does not call the reference",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# early stopping
# --------------------------------------------------------------------------------------------------


def stop_since_best_index(val_losses, patience, min_delta=0.0):
    best_index, best = -1, float("inf")
    for i, loss in enumerate(val_losses):
        if loss < best - min_delta:
            best_index, best = i, loss
    return len(val_losses) - 1 - best_index >= patience


def stop_with_the_class(val_losses, patience, min_delta=0.0):
    stopper = early_stopping.EarlyStopping(patience, min_delta)
    return any([stopper.step(v) for v in val_losses][-1:])


def stop_late(val_losses, patience, min_delta=0.0):
    return checks._stop_late(val_losses, patience, min_delta)


@pytest.mark.parametrize("hidden", [False, True])
def test_early_stopping_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_early_stopping, stop_since_best_index, hidden)


def test_early_stopping_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_early_stopping, early_stopping.should_stop)


@pytest.mark.parametrize(
    ("bug", "fragment"),
    [
        (checks._stop_late, "stops one epoch late"),
        (checks._stop_early, "stops one epoch early"),
        (checks._stop_vs_previous, "compares each loss with the previous epoch"),
        (checks._stop_no_delta, "ignores min_delta"),
        (checks._stop_max, "treats a higher loss as an improvement"),
        (checks._stop_ties_improve, "counts a loss equal to the best"),
        (checks._stop_best_always, "updates the best value"),
    ],
)
def test_early_stopping_names_classic_bugs(capsys, bug, fragment):
    def answer(val_losses, patience, min_delta=0.0):
        return bug(val_losses, patience, min_delta)

    assert_fails(capsys, checks.check_early_stopping, answer, "expected", fragment)


def test_early_stopping_rejects_non_bools(capsys):
    assert_fails(capsys, checks.check_early_stopping, lambda v, p, d=0.0: None, "True or False")


def test_early_stopping_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_early_stopping, not_implemented, "not implemented yet")


def test_early_stopping_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys, checks.check_early_stopping, stop_with_the_class, "EarlyStopping", hidden=True
    )


# --------------------------------------------------------------------------------------------------
# log-uniform sampling
# --------------------------------------------------------------------------------------------------


def log_uniform_base10(low, high, n, rng):
    return 10 ** rng.uniform(np.log10(low), np.log10(high), size=n)


def log_uniform_loop(low, high, n, rng):
    return [math.exp(rng.uniform(math.log(low), math.log(high))) for _ in range(n)]


def log_uniform_torch(low, high, n, rng):
    u = torch.from_numpy(rng.random(n))
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def log_uniform_linear(low, high, n, rng):
    return rng.uniform(low, high, n)


def log_uniform_mixed_bases(low, high, n, rng):
    return 10 ** rng.uniform(np.log(low), np.log(high), n)


def log_uniform_mixed_bases_other_way(low, high, n, rng):
    return np.exp(rng.uniform(np.log10(low), np.log10(high), n))


def log_uniform_exponent(low, high, n, rng):
    return rng.uniform(np.log(low), np.log(high), n)


def log_uniform_exponent10(low, high, n, rng):
    return rng.uniform(np.log10(low), np.log10(high), n)


def log_uniform_global_rng(low, high, n, rng):
    return np.exp(np.random.uniform(np.log(low), np.log(high), n))


def log_uniform_wrong_count(low, high, n, rng):
    return np.exp(rng.uniform(np.log(low), np.log(high), n + 1))


def log_uniform_scipy(low, high, n, rng):
    import scipy.stats

    return scipy.stats.loguniform(low, high).rvs(size=n, random_state=rng)


def log_uniform_calls_reference(low, high, n, rng):
    return tuning.log_uniform(low, high, n, rng)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [log_uniform_base10, log_uniform_loop, log_uniform_torch])
def test_log_uniform_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_log_uniform, answer, hidden)


def test_log_uniform_passes_the_reference_when_not_hidden(capsys):
    assert_passes(
        capsys, checks.check_log_uniform, lambda lo, hi, n, rng: tuning.log_uniform(lo, hi, n, rng)
    )


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (log_uniform_linear, "uniform in linear space"),
        (log_uniform_mixed_bases, "10 ** uniform(ln low, ln high)"),
        (log_uniform_mixed_bases_other_way, "exp(uniform(log10 low, log10 high))"),
        (log_uniform_exponent, "returned the exponent u ~ uniform(ln low, ln high)"),
        (log_uniform_exponent10, "returned the exponent u ~ uniform(log10 low, log10 high)"),
        (log_uniform_global_rng, "draw from the rng argument"),
        (log_uniform_wrong_count, "expected 20000 samples"),
    ],
)
def test_log_uniform_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_log_uniform, answer, "low=1e-05, high=0.1", fragment)


def test_log_uniform_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_log_uniform, not_implemented, "not implemented yet")


@pytest.mark.parametrize("answer", [log_uniform_scipy, log_uniform_calls_reference])
def test_log_uniform_hidden_catches_the_reference(capsys, answer):
    assert_fails(
        capsys, checks.check_log_uniform, answer, "does not call the reference", hidden=True
    )


# --------------------------------------------------------------------------------------------------
# random search
# --------------------------------------------------------------------------------------------------


def _draw(kind, low, high, rng):
    if kind == "log":
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def search_reference_style(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: _draw(*spec, rng) for name, spec in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_vectorised(objective, space, n_trials, rng):
    columns = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            columns[name] = 10 ** rng.uniform(np.log10(low), np.log10(high), n_trials)
        else:
            columns[name] = rng.uniform(low, high, n_trials)
    trials = []
    for i in range(n_trials):
        params = {name: float(values[i]) for name, values in columns.items()}
        trials.append((params, objective(params)))
    return trials


def search_grid(objective, space, n_trials, rng):
    per_axis = max(1, round(n_trials ** (1 / len(space))))
    axes = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            axes[name] = np.geomspace(low, high, per_axis)
        else:
            axes[name] = np.linspace(low, high, per_axis)
    names = list(axes)
    trials = []
    for i in range(n_trials):
        params = {}
        rest = i
        for name in names:
            params[name] = float(axes[name][rest % per_axis])
            rest //= per_axis
        trials.append((params, objective(params)))
    return trials


def search_linear_everywhere(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: float(rng.uniform(low, high)) for name, (_, low, high) in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_log_everywhere(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: _draw("log", low, high, rng) for name, (_, low, high) in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_mixed_bases(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {}
        for name, (kind, low, high) in space.items():
            if kind == "log":
                params[name] = float(10 ** rng.uniform(np.log(low), np.log(high)))
            else:
                params[name] = float(rng.uniform(low, high))
        trials.append((params, objective(params)))
    return trials


def search_global_rng(objective, space, n_trials, rng):
    return search_reference_style(objective, space, n_trials, np.random.default_rng())


def search_wrong_values(objective, space, n_trials, rng):
    return [(params, 0.0) for params, _ in search_reference_style(objective, space, n_trials, rng)]


def log_uniform(low, high, rng):
    """A learner's own helper that shares its name with the course's reference."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def search_with_own_helper(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {
            name: log_uniform(low, high, rng) if kind == "log" else float(rng.uniform(low, high))
            for name, (kind, low, high) in space.items()
        }
        trials.append((params, objective(params)))
    return trials


def search_calls_reference(objective, space, n_trials, rng):
    trials = tuning.random_search(objective, space, n_trials, seed=rng)
    return [(t.params, t.value) for t in trials]


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [search_reference_style, search_vectorised, search_with_own_helper]
)
def test_random_search_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_random_search, answer, hidden)


def test_random_search_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_random_search, search_calls_reference)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (search_grid, "a grid"),
        (search_linear_everywhere, "sampled uniformly in linear space"),
        (search_log_everywhere, "sampled on a log scale"),
        (search_mixed_bases, "mix of log10 and ln"),
        (search_global_rng, "draw every sample from the rng argument"),
        (search_wrong_values, "is not objective(params)"),
    ],
)
def test_random_search_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_random_search, answer, fragment)


def test_random_search_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_random_search, not_implemented, "not implemented yet")


def test_random_search_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_random_search,
        search_calls_reference,
        "course_utils.tuning.random_search",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# cosine restarts
# --------------------------------------------------------------------------------------------------


def cosine_loop(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_closed_form(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    if T_mult == 1:
        t_cur, t_i = step % T_0, T_0
    else:
        n = math.floor(math.log(step / T_0 * (T_mult - 1) + 1, T_mult) + 1e-9)
        start = T_0 * (T_mult**n - 1) / (T_mult - 1)
        if step < start:  # float rounding put us one cycle too far
            n -= 1
            start = T_0 * (T_mult**n - 1) / (T_mult - 1)
        t_cur, t_i = step - start, T_0 * T_mult**n
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def cosine_late(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return base_lr if step < 1 else cosine_loop(step - 1, base_lr, T_0, T_mult, eta_min)


def cosine_early(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step + 1, base_lr, T_0, T_mult, eta_min)


def cosine_strict_greater(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur > t_i:
        t_cur -= t_i + 1
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_no_t_mult(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step, base_lr, T_0, 1, eta_min)


def cosine_without_one_plus(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * math.cos(math.pi * t_cur / t_i) / 2


def cosine_without_half(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return 2 * cosine_loop(step, base_lr, T_0, T_mult, eta_min) - eta_min


def cosine_ignores_eta_min(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step, base_lr, T_0, T_mult, 0.0)


def cosine_on_tensors(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    angle = torch.tensor(math.pi * t_cur / t_i, dtype=torch.float64)
    return eta_min + (base_lr - eta_min) * (1 + torch.cos(angle)) / 2


def cosine_with_torch_scheduler(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0, T_mult, eta_min
    )
    for _ in range(int(step)):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [cosine_loop, cosine_closed_form, cosine_on_tensors])
def test_cosine_restarts_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_cosine_restarts, answer, hidden)


def test_cosine_restarts_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_cosine_restarts, schedules.cosine_restart_lr)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (cosine_late, "restarts one step late"),
        (cosine_early, "restarts one step early"),
        (cosine_strict_greater, "cycles one step too long"),
        (cosine_no_t_mult, "ignores T_mult"),
        (cosine_without_one_plus, "missing the 1 +"),
        (cosine_without_half, "missing the 1/2"),
        (cosine_ignores_eta_min, "ignores eta_min"),
    ],
)
def test_cosine_restarts_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_cosine_restarts, answer, "expected lr", fragment)


def test_cosine_restarts_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_cosine_restarts, not_implemented, "not implemented yet")


def test_cosine_restarts_hidden_catches_the_torch_scheduler(capsys):
    assert_fails(
        capsys,
        checks.check_cosine_restarts,
        cosine_with_torch_scheduler,
        "CosineAnnealingWarmRestarts",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# ensemble averaging
# --------------------------------------------------------------------------------------------------


def average_with_loop(logits_list):
    total = None
    for logits in logits_list:
        p = F.softmax(logits, dim=1)
        total = p if total is None else total + p
    return total / len(logits_list)


def average_logits_then_softmax(logits_list):
    return torch.stack(list(logits_list)).mean(0).softmax(-1)


def average_without_softmax(logits_list):
    return torch.stack(list(logits_list)).mean(0)


def average_votes(logits_list):
    stacked = torch.stack(list(logits_list))
    votes = F.one_hot(stacked.argmax(-1), stacked.shape[-1]).to(stacked.dtype)
    return votes.mean(0)


def average_softmax_over_samples(logits_list):
    return torch.stack([z.softmax(dim=0) for z in logits_list]).mean(0)


def average_softmax_over_models(logits_list):
    return torch.stack(list(logits_list)).softmax(0).mean(0)


def average_over_samples_axis(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).mean(1)


def average_over_classes_axis(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).mean(-1)


def average_summed(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).sum(0)


def average_manual_exp(logits_list):
    stacked = torch.stack(list(logits_list))
    e = stacked.exp()
    return (e / e.sum(-1, keepdim=True)).mean(0)


def average_in_float32(logits_list):
    return torch.stack([z.float() for z in logits_list]).softmax(-1).mean(0)


def average_on_cpu(logits_list):
    total = torch.zeros(logits_list[0].shape)
    for z in logits_list:
        total = total + z.softmax(-1)
    return total / len(logits_list)


def average_noisily(logits_list):
    warnings.warn("a learner's debugging warning", stacklevel=1)
    print("debugging output", file=sys.stderr)
    return torch.stack(list(logits_list)).softmax(-1).mean(0)


def test_ensemble_average_keeps_the_answers_stderr_and_warnings_off_stderr(capsys):
    assert_passes(capsys, checks.check_ensemble_average, average_noisily, hidden=True)


def average_calls_reference(logits_list):
    return ensemble.average_probabilities(logits_list)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [average_with_loop, lambda zs: torch.stack(list(zs)).softmax(-1).mean(0)]
)
def test_ensemble_average_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_ensemble_average, answer, hidden)


def test_ensemble_average_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_ensemble_average, ensemble.average_probabilities)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (average_logits_then_softmax, "averaged the logits, then applied softmax"),
        (average_without_softmax, "forgot the softmax"),
        (average_votes, "hard voting"),
        (average_softmax_over_samples, "softmax over the samples axis"),
        (average_softmax_over_models, "softmax over the models axis"),
        (average_over_samples_axis, "averaged over the samples axis"),
        (average_over_classes_axis, "averaged over the classes axis"),
        (average_summed, "summed the probabilities"),
        (average_manual_exp, "exp overflowed"),
        (average_in_float32, "dtype should match"),
    ],
)
def test_ensemble_average_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_ensemble_average, answer, fragment)


def test_ensemble_average_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_ensemble_average, not_implemented, "not implemented yet")


def test_ensemble_average_catches_tensors_on_the_wrong_device(capsys):
    assert_fails(
        capsys, checks.check_ensemble_average, average_on_cpu, "meta device", WRONG_DEVICE_HINT
    )


def test_ensemble_average_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_ensemble_average,
        average_calls_reference,
        "does not call the reference",
        hidden=True,
    )


# --------------------------------------------------------------------------------------------------
# shared behaviour
# --------------------------------------------------------------------------------------------------


def test_checks_leave_the_global_rng_and_thread_count_alone(capsys):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    checks.check_batch_independence(dependence_with_backward)
    capsys.readouterr()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_checks_are_deterministic(capsys):
    first = checks.check_log_uniform(log_uniform_linear).lines
    second = checks.check_log_uniform(log_uniform_linear).lines
    capsys.readouterr()
    assert first == second


def test_checks_are_registered_under_the_package():
    from course_utils import checks as package

    for name in [
        "check_expected_initial_loss",
        "check_batch_independence",
        "check_overfit_one_batch",
        "check_early_stopping",
        "check_log_uniform",
        "check_random_search",
        "check_cosine_restarts",
        "check_ensemble_average",
    ]:
        assert getattr(package, name) is getattr(checks, name)
