"""Checks for the training exercises: sanity checks, early stopping, search, schedules, ensembles.

Each ``check_<exercise>(learner_fn, *, hidden=False) -> CheckResult`` runs the learner's function on
fixed-seed inputs and edge cases, compares it with the reference in ``course_utils`` and prints one
``PASS`` line or ``FAIL`` lines naming the input, expected vs got and the classic bug it looks like
(see ``_report.py``). ``hidden=True`` adds edge cases and fails answers that call the reference.

The exercises and the exact signatures the checks call (positional arguments):

- ``expected_initial_loss(num_classes) -> float``: the loss at init, ln C. (stage 02)
- ``batch_dependence(model, x, index) -> Tensor (N,)``: L2 norm, per sample, of the gradient of
  ``model(x)[index].sum()`` with respect to the input batch ``x``. (stage 02)
- ``overfit_one_batch(model, x, y, steps) -> list[float]``: train ``model`` in place on one batch
with
  Adam (lr 3e-3 works) and cross-entropy, return the ``steps`` losses as floats. (stage 02)
- ``should_stop(val_losses, patience, min_delta=0.0) -> bool``: early stopping, see
  ``course_utils.early_stopping``. (stage 04)
- ``sample_log_uniform(low, high, n, rng) -> array (n,)``: log-uniform samples from the NumPy
  ``Generator`` ``rng``. (stage 05)
- ``random_search(objective, space, n_trials, rng) -> list[(params, value)]``, ``space`` mapping
  names to ``("log", low, high)`` or ``("uniform", low, high)``. (stage 05)
- ``cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float``: the lr of
  ``CosineAnnealingWarmRestarts`` after ``step`` scheduler steps. (stage 05)
- ``ensemble_average(logits_list) -> Tensor (N, C)``: mean of the models' softmax probabilities.
  (stage 06)
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import early_stopping, ensemble, sanity, schedules
from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    ReferenceCalled,
    meta_like,
    one_cpu_thread,
    tripwires,
)
from course_utils.checks._report import CheckResult, Report, describe

# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------

_LIBRARY_PACKAGES = ("course_utils", "torch", "sklearn", "scipy", "optuna", "numpy")


def _source_calls(fn: Callable[..., Any], banned: Sequence[str]) -> list[str]:
    """Banned dotted names whose last part is called in ``fn``'s source (its own ``def`` aside)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return []
    name = getattr(fn, "__name__", "")
    text = re.sub(rf"def\s+{re.escape(name)}\s*\(", "def _answer(", text, count=1)
    names = getattr(fn, "__globals__", {})
    found = []
    for dotted in banned:
        leaf = dotted.rsplit(".", 1)[-1]
        if not re.search(rf"(?<![\w]){re.escape(leaf)}\s*\(", text):
            continue
        own = names.get(leaf)
        if own is not None and not _from_library(own):
            continue  # the learner's own helper that happens to share the name
        found.append(dotted)
    return found


def _from_library(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] in _LIBRARY_PACKAGES


def _reference_case(
    report: Report, learner_fn: Callable[..., Any], banned: Sequence[str], run: Callable[[], Any]
) -> None:
    """Hidden-test case: the answer is not a library function, names no banned function in its
    source, and calls none of them while ``run()`` runs it (tripwires)."""
    with report.case("does not call the reference"):
        if _from_library(learner_fn):
            report.fail(
                f"your answer is the library function {learner_fn.__module__}."
                f"{getattr(learner_fn, '__name__', '?')}; write the function yourself"
            )
        found = _source_calls(learner_fn, banned)
        if found:
            report.fail(f"your answer calls {', '.join(found)}, which it should implement itself")
        # Only modules already imported can be called at run time without an import statement,
        # which the source check sees; this spares importing e.g. scipy.stats just to guard it.
        with tripwires(_importable(list(banned))):
            try:
                run()
            except ReferenceCalled:
                raise
            except Exception:  # other errors are reported by the other cases
                pass


def _importable(names: list[str]) -> list[str]:
    """The dotted names whose module (or class) is already imported."""
    kept = []
    for dotted in names:
        owner = dotted.rsplit(".", 1)[0]
        parent, _, leaf = owner.rpartition(".")
        if owner in sys.modules or hasattr(sys.modules.get(parent), leaf):
            kept.append(dotted)
    return kept


def _device_error(error: Exception) -> bool:
    text = str(error)
    return "Expected all tensors to be on the same device" in text or "meta" in text


def _meta_failure(error: Exception) -> str:
    if "item()" in str(error) or "tolist" in str(error):
        return (
            "your function calls .item()/.tolist() or converts a tensor to a Python number; keep "
            "the computation in tensor operations so it runs on any device without a host sync"
        )
    return WRONG_DEVICE_HINT


def _expect_meta(report: Report, got: object, shape: tuple[int, ...]) -> None:
    if not isinstance(got, torch.Tensor):
        report.fail(f"should return a tensor, got {type(got).__name__}")
    if got.device.type != "meta":
        report.fail(
            f"the inputs were on the meta device but the output is on {got.device.type}. "
            + WRONG_DEVICE_HINT
        )
    if tuple(got.shape) != shape:
        report.fail(f"output has shape {tuple(got.shape)}, expected {shape}")


def _as_float(report: Report, value: object, what: str) -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor; else FAIL."""
    if isinstance(value, bool):
        report.fail(f"{what} should be a number, got the bool {value}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().cpu().reshape(()))
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    report.fail(f"{what} should be a single number, got {describe(value)}")
    raise AssertionError  # unreachable: report.fail raises


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    """``build()`` with the global torch RNG seeded, without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _first_match(
    got: Any, variants: dict[str, Callable[[], Any]], same: Callable[[Any, Any], bool]
) -> str | None:
    """The hint of the first buggy variant whose output equals ``got``."""
    for hint, compute in variants.items():
        try:
            if same(got, compute()):
                return hint
        except Exception:  # a variant undefined on this input (e.g. log(0)) matches nothing
            continue
    return None


# --------------------------------------------------------------------------------------------------
# Stage 02: expected initial loss
# --------------------------------------------------------------------------------------------------


def check_expected_initial_loss(
    learner_fn: Callable[[int], float], *, hidden: bool = False
) -> CheckResult:
    """Check ``expected_initial_loss(num_classes) -> float``: the cross-entropy of a uniform guess.

    Expected: -ln(1/C) = ln C (natural log: PyTorch's cross-entropy is in nats). The answer may
    return a float or a one-element tensor. Tried on C = 10, 2, 1000, 3 (hidden: 7, 100, 1).
    """
    report = Report("expected_initial_loss")
    classes = [10, 2, 1000, 3] + ([7, 100, 1] if hidden else [])
    for c in classes:
        with report.case(f"num_classes={c}"):
            got = _as_float(report, learner_fn(c), "the expected initial loss")
            expected = math.log(c)
            if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6):
                continue
            variants = {
                "log10 instead of the natural log; cross-entropy uses ln (math.log / np.log)": (
                    lambda c=c: math.log10(c)
                ),
                "log2 instead of the natural log (bits, not nats); use math.log": (
                    lambda c=c: math.log2(c)
                ),
                "the probability 1/C of the true class, not the loss -ln(1/C)": lambda c=c: 1 / c,
                "wrong sign: the loss is -ln(1/C) = +ln C, which is positive": (
                    lambda c=c: -math.log(c)
                ),
                "ln(C-1): a uniform guess spreads the probability over all C classes, p = 1/C": (
                    lambda c=c: math.log(c - 1)
                ),
            }
            hint = _first_match(got, variants, lambda g, v: math.isclose(g, v, rel_tol=1e-5))
            message = f"expected ln({c}) = {expected:.6g}, got {got:.6g}"
            report.fail(message + (f". Looks like: {hint}" if hint else ""))
    if hidden:
        _reference_case(
            report,
            learner_fn,
            ["course_utils.sanity.expected_initial_loss"],
            lambda: learner_fn(10),
        )
    return report.finish(f"ln C for C in {classes}")


# --------------------------------------------------------------------------------------------------
# Stage 02: batch independence via backprop
# --------------------------------------------------------------------------------------------------


class _SequenceMixer(nn.Module):
    """Planted bug: wants time-major (T, N, D) but uses ``view`` instead of ``permute(1, 0, 2)``."""

    def __init__(self, features: int = 3, hidden: int = 4) -> None:
        super().__init__()
        self.step = nn.Linear(features, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        time_major = x.view(t, n, d)  # the bug: reinterprets memory, mixing samples
        return self.step(time_major).sum(dim=0)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def _batchnorm_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 3))


def _convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )


def _nonzero(norms: torch.Tensor) -> list[int]:
    values = norms.detach().to("cpu", torch.float64)
    threshold = 1e-7 * (1.0 + float(values.abs().max())) if values.numel() else 0.0
    return [i for i, v in enumerate(values.tolist()) if abs(v) > threshold]


def _input_grad_norms(model: nn.Module, x: torch.Tensor, scalar: Callable[..., torch.Tensor]):
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(scalar(model(leaf)), leaf)
    return grad.reshape(x.shape[0], -1).norm(dim=1)


def _batch_dependence_case(
    report: Report,
    learner_fn: Callable[..., Any],
    model: nn.Module,
    x: torch.Tensor,
    index: int,
    note: str = "",
) -> None:
    # Every computation gets its own copy: a train-mode forward updates BatchNorm's running stats.
    expected = sanity.batch_dependence(copy.deepcopy(model), x, index)
    got = learner_fn(copy.deepcopy(model), x.clone(), index)
    n = x.shape[0]
    if isinstance(got, (tuple, list)) and got and all(isinstance(g, torch.Tensor) for g in got):
        report.fail(
            f"returned a {type(got).__name__} of {len(got)} tensors; this looks like the gradients "
            "with respect to the parameters. Take the gradient with respect to the input x and "
            "return one norm per sample, a tensor of shape (N,)"
        )
    if not isinstance(got, torch.Tensor):
        report.fail(f"should return a tensor of shape ({n},), got {type(got).__name__}")
    if tuple(got.shape) != (n,):
        param_shapes = {tuple(p.shape) for p in model.parameters()}
        if tuple(got.shape) == tuple(x.shape):
            reason = (
                "returned the gradient itself; reduce it to one L2 norm per sample, e.g. "
                "grad.reshape(N, -1).norm(dim=1)"
            )
        elif tuple(got.shape) in param_shapes:
            reason = (
                "the shape of a parameter: the gradient was taken with respect to the weights, not "
                "the input x"
            )
        elif got.dim() == 0:
            reason = "a single number; return one gradient norm per sample"
        else:
            reason = "one norm per sample of the batch is expected"
        report.fail(f"output has shape {tuple(got.shape)}, expected ({n},): {reason}")
    if torch.allclose(
        got.detach().to("cpu", torch.float64), expected.to(torch.float64), rtol=1e-4, atol=1e-6
    ):
        return
    got_pattern, expected_pattern = _nonzero(got), _nonzero(expected)
    message = (
        f"expected norms{note} {describe(expected)} "
        f"(non-zero at {expected_pattern}), got {describe(got.detach())} "
        f"(non-zero at {got_pattern})"
    )
    summed = _input_grad_norms(copy.deepcopy(model), x, lambda out: out.sum())
    in_eval = _input_grad_norms(copy.deepcopy(model).eval(), x, lambda out: out[index].sum())
    got64 = got.detach().to("cpu", torch.float64)

    def close(a: torch.Tensor) -> bool:
        return torch.allclose(got64, a.to(torch.float64), rtol=1e-4, atol=1e-6)

    if close(summed) and not close(expected):
        hint = (
            "the gradient of the sum of ALL outputs (e.g. model(x).sum()), so every sample looks "
            "dependent; backpropagate model(x)[index].sum() only"
        )
    elif model.training and close(in_eval):
        hint = (
            "the model was switched to eval mode; use it in the mode it is given (BatchNorm in "
            "train mode really does mix the samples of a batch)"
        )
    elif got_pattern == expected_pattern and close(expected**2):
        hint = "squared norms; return the L2 norm per sample (.norm(dim=1))"
    elif got_pattern == expected_pattern:
        hint = (
            "the right samples are non-zero but the values differ: return the L2 norm, per "
            "sample, of the gradient of model(x)[index].sum() with respect to x"
        )
    else:
        hint = None
    report.fail(message + (f". Looks like: {hint}" if hint else ""))


@one_cpu_thread
def check_batch_independence(
    learner_fn: Callable[[nn.Module, torch.Tensor, int], torch.Tensor], *, hidden: bool = False
) -> CheckResult:
    """Check ``batch_dependence(model, x, index) -> Tensor (N,)``.

    Expected: the L2 norm, for each sample n, of the gradient of ``model(x)[index].sum()`` with
    respect to ``x[n]`` (the model in the mode it is given, the caller's ``x`` and the parameters'
    ``.grad`` untouched). Tried on an MLP that treats samples independently (only ``index``
    non-zero), a model with a planted ``view``-instead-of-``permute`` bug and an MLP with BatchNorm
    in train mode (both mix the batch); twice in a row on the same ``x`` (gradients must not
    accumulate); on the meta device. Hidden: BatchNorm in eval mode, a conv net, the last index.
    """
    report = Report("batch_independence")
    gen = torch.Generator().manual_seed(0)
    x_flat = torch.randn(5, 6, generator=gen)
    x_seq = torch.randn(5, 4, 3, generator=gen)
    mlp = _seeded(1, _mlp)
    mixer = _seeded(2, _SequenceMixer)
    bn = _seeded(3, _batchnorm_mlp).train()

    with report.case("independent MLP, x of shape (5, 6), index=2"):
        _batch_dependence_case(report, learner_fn, mlp, x_flat, 2)
    with report.case("model with a view-instead-of-permute bug, x of shape (5, 4, 3), index=0"):
        _batch_dependence_case(report, learner_fn, mixer, x_seq, 0, " (this model mixes samples)")
    with report.case("MLP with BatchNorm in train mode, index=1"):
        _batch_dependence_case(report, learner_fn, bn, x_flat, 1, " (BatchNorm mixes samples)")
    with report.case("two calls on the same x (index=0, then index=3)"):
        shared = x_flat.clone()
        learner_fn(mlp, shared, 0)
        got = learner_fn(mlp, shared, 3)
        shape_ok = isinstance(got, torch.Tensor) and tuple(got.shape) == (5,)
        if shape_ok and _nonzero(got) != [3] and 0 in _nonzero(got):
            report.fail(
                f"the second call returned non-zeros at {_nonzero(got)}, expected only at 3. Looks "
                "like: gradients accumulated from the first call (x.grad was not reset); "
                "differentiate a fresh leaf, x.detach().clone().requires_grad_(True), or use "
                "torch.autograd.grad"
            )
    with report.case("on the meta device"):
        meta_model = copy.deepcopy(mlp).to("meta")
        (x_meta,) = meta_like((5, 6))
        try:
            got = learner_fn(meta_model, x_meta, 2)
        except Exception as error:
            if _device_error(error):
                report.fail(_meta_failure(error))
            raise
        _expect_meta(report, got, (5,))
    if hidden:
        with report.case("MLP with BatchNorm in eval mode (independent), index=4"):
            _batch_dependence_case(report, learner_fn, copy.deepcopy(bn).eval(), x_flat, 4)
        with report.case("conv net, x of shape (4, 1, 6, 6), index=3"):
            x_img = torch.randn(4, 1, 6, 6, generator=gen)
            _batch_dependence_case(report, learner_fn, _seeded(4, _convnet), x_img, 3)
        _reference_case(
            report,
            learner_fn,
            ["course_utils.sanity.batch_dependence", "course_utils.sanity.mixes_batch"],
            lambda: learner_fn(mlp, x_flat.clone(), 0),
        )
    return report.finish(
        "per-sample input-gradient norms match on independent, view-bug and BatchNorm models"
    )


# --------------------------------------------------------------------------------------------------
# Stage 02: overfit one batch
# --------------------------------------------------------------------------------------------------

_OVERFIT_TARGET = 1e-2


class _GradientSpy:
    """Records, per parameter, the gradient of the last backward pass and the sum of all passes."""

    def __init__(self, model: nn.Module) -> None:
        self.last: dict[str, torch.Tensor] = {}
        self.total: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        for name, p in model.named_parameters():
            p.register_hook(self._recorder(name))

    def _recorder(self, name: str) -> Callable[[torch.Tensor], None]:
        def record(grad: torch.Tensor) -> None:
            self.last[name] = grad.detach().clone()
            self.total[name] = self.total.get(name, torch.zeros_like(grad)) + grad.detach()
            self.calls[name] = self.calls.get(name, 0) + 1

        return record

    def accumulated(self, model: nn.Module) -> bool:
        """True when some ``.grad`` holds the sum of several passes rather than the last one."""
        for name, p in model.named_parameters():
            if p.grad is None or self.calls.get(name, 0) < 2:
                continue
            last, total = self.last[name], self.total[name]
            if not torch.allclose(p.grad, last, rtol=1e-4, atol=1e-7) and torch.allclose(
                p.grad, total, rtol=1e-3, atol=1e-6
            ):
                return True
        return False


def _overfit_case(
    report: Report, learner_fn: Callable[..., Any], seed: int, n: int, steps: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    model = _seeded(seed, lambda: nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3)))
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        start = float(F.cross_entropy(model(x), y))
    spy = _GradientSpy(model)

    history = learner_fn(model, x, y, steps)

    if isinstance(history, torch.Tensor) or not isinstance(history, (list, tuple)):
        report.fail(
            f"should return a list of {steps} floats (one loss per step), got {describe(history)}"
        )
    if len(history) != steps:
        report.fail(f"expected {steps} losses (one per step), got {len(history)}")
    tensors = [h for h in history if isinstance(h, torch.Tensor)]
    if tensors:
        attached = any(t.requires_grad for t in tensors)
        report.fail(
            "the history holds tensors"
            + (
                " still attached to the graph (every step's graph stays in memory)"
                if attached
                else ""
            )
            + ": append loss.item(), a Python float"
        )
    if not all(isinstance(h, (int, float, np.floating, np.integer)) for h in history):
        report.fail(f"the history should hold floats, got {describe(list(history[:3]))}")
    values = [float(h) for h in history]
    if not all(math.isfinite(v) for v in values):
        report.fail("the loss became nan/inf: the learning rate is far too high")
    moved = any(
        not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    if not moved or max(values) - min(values) < 1e-7:
        report.fail(
            f"the loss stayed at {values[0]:.4g}: the model did not train. Pass "
            "model.parameters() to the optimizer, and call loss.backward() and "
            "optimizer.step() at every step"
        )
    if spy.accumulated(model):
        report.fail(
            "gradients accumulate across steps: call optimizer.zero_grad() before each backward "
            "(PyTorch adds new gradients to .grad)"
        )
    if not math.isclose(values[0], start, rel_tol=0.25):
        report.fail(
            f"the first loss should be the loss at the start, about {start:.4g}, got "
            f"{values[0]:.4g}: record loss.item() of F.cross_entropy(model(x), y) at each step"
        )
    with torch.no_grad():
        final = float(F.cross_entropy(model(x), y))
    if not final < _OVERFIT_TARGET:
        trend = (
            "it went up: the learning rate is too high"
            if values[-1] > values[0]
            else "it went down too slowly: the learning rate is too low (Adam with 3e-3 works) or "
            "the update is wrong"
        )
        report.fail(
            f"after {steps} steps the loss on the batch is {final:.3g} "
            f"(needs < {_OVERFIT_TARGET}), from {start:.3g} at the start; {trend}. "
            "Common causes: forgot optimizer.zero_grad(), a too low or too high lr, training "
            "under torch.no_grad(), or in eval mode with dropout"
        )


@one_cpu_thread
def check_overfit_one_batch(
    learner_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor, int], list[float]],
    *,
    hidden: bool = False,
) -> CheckResult:
    """Check ``overfit_one_batch(model, x, y, steps) -> list[float]``.

    Expected: train ``model`` in place on the batch with Adam (lr 3e-3 works) on
    ``F.cross_entropy(model(x), y)``, zeroing the gradients every step; return ``steps`` Python
    floats, the first being the loss at the start. PASS when the model's loss on the batch ends
    below 0.01. Tried on an MLP 8-64-3 with a batch of 4 for 200 steps (hidden: batches of 2 and 8).
    The check also inspects the parameters' ``.grad`` to see whether gradients accumulated.
    """
    report = Report("overfit_one_batch")
    cases = [(0, 4, 200)] + ([(1, 2, 200), (2, 8, 200)] if hidden else [])
    for seed, n, steps in cases:
        with report.case(f"MLP 8-64-3, batch of {n} random examples, steps={steps}"):
            _overfit_case(report, learner_fn, seed, n, steps)
    if hidden:

        def run() -> None:
            gen = torch.Generator().manual_seed(5)
            model = _seeded(5, lambda: nn.Sequential(nn.Linear(8, 3)))
            learner_fn(model, torch.randn(2, 8, generator=gen), torch.tensor([0, 1]), 2)

        _reference_case(report, learner_fn, ["course_utils.sanity.overfit_one_batch"], run)
    return report.finish(f"the loss of one batch falls below {_OVERFIT_TARGET} within 200 steps")


# --------------------------------------------------------------------------------------------------
# Stage 04: early stopping
# --------------------------------------------------------------------------------------------------


def _stop_late(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited > patience


def _stop_early(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited >= patience - 1


def _stop_vs_previous(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    previous, waited = math.inf, 0
    for loss in losses:
        waited = 0 if loss < previous - min_delta else waited + 1
        previous = loss
    return waited >= patience


def _stop_no_delta(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    return early_stopping.should_stop(losses, patience, 0.0)


def _stop_max(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    return early_stopping.should_stop([-v for v in losses], patience, min_delta)


def _stop_ties_improve(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss <= best - min_delta else (best, waited + 1)
    return waited >= patience


def _stop_best_always(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        waited = 0 if loss < best - min_delta else waited + 1
        best = min(best, loss)
    return waited >= patience


_STOPPING_BUGS: dict[str, Callable[..., bool]] = {
    "stops one epoch late: stop when the count of epochs without improvement reaches patience "
    "(>=), not when it exceeds it": _stop_late,
    "stops one epoch early: stop when `patience` epochs in a row did not improve, not "
    "patience - 1": _stop_early,
    "compares each loss with the previous epoch; compare with the best loss so far": (
        _stop_vs_previous
    ),
    "ignores min_delta: an epoch improves only when loss < best - min_delta": _stop_no_delta,
    "treats a higher loss as an improvement; a validation loss improves when it goes "
    "down": _stop_max,
    "counts a loss equal to the best (within min_delta) as an improvement; it must be strictly "
    "lower than best - min_delta": _stop_ties_improve,
    "updates the best value on epochs that did not improve by more than min_delta; the best only "
    "moves when an epoch counts as an improvement": _stop_best_always,
}


def _as_bool(report: Report, value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value)
    report.fail(f"should return True or False, got {describe(value)}")
    raise AssertionError  # unreachable


StoppingCase = tuple[list[float], int, float]


def _stopping_outputs(fn: Callable[..., Any], case: StoppingCase) -> list[object]:
    """``fn`` on every prefix (including the empty one) of the case's losses."""
    losses, patience, min_delta = case
    return [fn(list(losses[:end]), patience, min_delta) for end in range(len(losses) + 1)]


def _stopping_hint(
    answers: dict[int, list[bool]], cases: list[StoppingCase], index: int
) -> str | None:
    """The bug that explains every answer, else the first one explaining this case's answers."""
    for scope in (answers, {index: answers[index]}):
        for hint, bug in _STOPPING_BUGS.items():
            if all(_stopping_outputs(bug, cases[i]) == got for i, got in scope.items()):
                return hint
    return None


def check_early_stopping(
    learner_fn: Callable[[Sequence[float], int, float], bool], *, hidden: bool = False
) -> CheckResult:
    """Check ``should_stop(val_losses, patience, min_delta=0.0) -> bool``.

    Expected (the Keras/Lightning convention, ``course_utils.early_stopping.should_stop``): walk the
    validation losses with best = +inf and a counter at 0. A loss below ``best - min_delta`` is an
    improvement: best becomes that loss and the counter goes back to 0. Any other loss adds 1 to the
    counter. Return True when the counter is >= ``patience`` (False for an empty list). Example:
    ``should_stop([1.0, 0.8, 0.85, 0.9], patience=2)`` is True.

    The check calls the answer on every prefix of hand-made and random loss histories (positional
    arguments ``(list_of_floats, patience, min_delta)``). Hidden: patience 1, plateaus, larger
    deltas.
    """
    report = Report("early_stopping")
    cases: list[StoppingCase] = [
        ([1.0, 0.8, 0.85, 0.9, 0.95, 0.97], 2, 0.0),
        ([1.0, 0.5, 0.9, 0.8, 0.7, 0.6], 2, 0.0),
        ([1.0, 0.95, 0.92, 0.9, 0.89], 2, 0.1),
        ([1.0, 1.2, 1.3, 1.4], 2, 0.0),
        ([1.0, 1.0, 1.0, 1.0], 2, 0.0),
        ([1.0, 0.95, 0.86, 0.8, 0.79], 2, 0.1),
    ]
    rng = np.random.default_rng(0)
    for patience, min_delta in [(3, 0.0), (2, 0.01), (4, 0.005)]:
        walk = 1.0 + np.cumsum(rng.normal(-0.01, 0.02, size=25))
        cases.append(([round(float(v), 4) for v in walk], patience, min_delta))
    if hidden:
        cases += [
            ([0.5, 0.6, 0.4, 0.45], 1, 0.0),
            ([2.0] * 6, 3, 0.0),
            ([1.0, 0.7, 0.65, 0.62, 0.5, 0.49, 0.48, 0.47], 3, 0.05),
        ]

    def label(losses: list[float]) -> str:
        return f"losses={losses[:6]}{'...' if len(losses) > 6 else ''}"

    answers: dict[int, list[bool]] = {}
    for i, case in enumerate(cases):  # first run everything, so one bug can explain all cases
        with report.case(label(case[0])):
            answers[i] = [_as_bool(report, got) for got in _stopping_outputs(learner_fn, case)]
    wrong = [
        i
        for i, got in answers.items()
        if got != _stopping_outputs(early_stopping.should_stop, cases[i])
    ]
    for i in wrong[:3]:
        got = answers[i]
        losses, patience, min_delta = cases[i]
        expected = _stopping_outputs(early_stopping.should_stop, cases[i])
        with report.case(label(losses)):
            end = next(k for k, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
            message = (
                f"should_stop({[round(v, 4) for v in losses[:end]]}, patience={patience}, "
                f"min_delta={min_delta}): expected {expected[end]}, got {got[end]}"
            )
            hint = _stopping_hint(answers, cases, i)
            report.fail(message + (f". Looks like: {hint}" if hint else ""))
    if len(wrong) > 3:
        with report.case(f"{len(wrong) - 3} more loss histories"):
            report.fail("the answer differs from the expected one on these too")
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.early_stopping.should_stop",
                "course_utils.early_stopping.EarlyStopping",
            ],
            lambda: learner_fn([1.0, 0.9, 0.95], 2, 0.0),
        )
    return report.finish(f"matches on every prefix of {len(cases)} loss histories")


# --------------------------------------------------------------------------------------------------
# Stage 05: log-uniform sampling and random search
# --------------------------------------------------------------------------------------------------


def _ks_uniform(u: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the sample ``u`` and U(0, 1) (1.0 if undefined)."""
    if u.size == 0 or not np.all(np.isfinite(u)):
        return 1.0
    u = np.sort(np.clip(u, 0.0, 1.0))
    n = u.size
    ranks = np.arange(1, n + 1)
    return float(max(np.max(ranks / n - u), np.max(u - (ranks - 1) / n)))


def _as_samples(report: Report, value: object, n: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        report.fail(f"should return {n} numbers (an array), got {describe(value)}")
    if array.shape != (n,):
        report.fail(f"expected {n} samples in an array of shape ({n},), got shape {array.shape}")
    return array


def _summarise(samples: np.ndarray) -> str:
    low, mid, high = np.quantile(samples, [0.0, 0.5, 1.0])
    return f"{samples.size} samples from {low:.3g} to {high:.3g} (median {mid:.3g})"


def _log_uniform_hypotheses(low: float, high: float) -> dict[str, Callable[[np.ndarray], Any]]:
    """Maps each explanation of a sample to the transform that makes it U(0, 1) if it holds."""
    ln_lo, ln_hi, lg_lo, lg_hi = math.log(low), math.log(high), math.log10(low), math.log10(high)
    return {
        "correct": lambda s: (np.log(s) - ln_lo) / (ln_hi - ln_lo),
        "uniform in linear space (rng.uniform(low, high)): most samples land in the top decade; "
        "sample the exponent uniformly, exp(uniform(ln low, ln high))": lambda s: (
            (s - low) / (high - low)
        ),
        "returned the exponent u ~ uniform(ln low, ln high); return exp(u)": lambda s: (
            (s - ln_lo) / (ln_hi - ln_lo)
        ),
        "returned the exponent u ~ uniform(log10 low, log10 high); return 10 ** u": lambda s: (
            (s - lg_lo) / (lg_hi - lg_lo)
        ),
        "10 ** uniform(ln low, ln high): natural-log bounds with base 10; use np.exp, or log10 "
        "bounds with 10 **": lambda s: (np.log10(s) - ln_lo) / (ln_hi - ln_lo),
        "exp(uniform(log10 low, log10 high)): log10 bounds with base e; use np.log bounds, or "
        "10 ** with log10 bounds": lambda s: (np.log(s) - lg_lo) / (lg_hi - lg_lo),
    }


def _log_uniform_case(
    report: Report, learner_fn: Callable[..., Any], low: float, high: float, n: int, seed: int
) -> None:
    samples = _as_samples(report, learner_fn(low, high, n, np.random.default_rng(seed)), n)
    again = _as_samples(report, learner_fn(low, high, n, np.random.default_rng(seed)), n)
    if not np.array_equal(samples, again, equal_nan=True):
        report.fail(
            "two calls with the same seeded rng gave different samples: draw from the rng argument "
            "(rng.uniform(...)), not np.random or random"
        )
    in_range = bool(np.all((samples >= low * (1 - 1e-9)) & (samples <= high * (1 + 1e-9))))
    if n < 100:
        if not in_range:
            report.fail(f"samples must lie in [{low:g}, {high:g}], got {_summarise(samples)}")
        return
    with np.errstate(all="ignore"):
        distances = {
            name: _ks_uniform(np.asarray(transform(samples), dtype=np.float64))
            for name, transform in _log_uniform_hypotheses(low, high).items()
        }
    if in_range and distances["correct"] < 0.03:
        return
    likeliest = min(distances, key=distances.__getitem__)
    message = (
        ("" if in_range else f"samples must lie in [{low:g}, {high:g}]; ")
        + f"got {_summarise(samples)}; log(samples) should be uniform on [ln low, ln high] "
        f"(Kolmogorov-Smirnov distance {distances['correct']:.3f}, should be < 0.03)"
    )
    if likeliest != "correct" and distances[likeliest] < 0.03:
        message += f". Looks like: {likeliest}"
    report.fail(message)


def check_log_uniform(
    learner_fn: Callable[[float, float, int, np.random.Generator], Any], *, hidden: bool = False
) -> CheckResult:
    """Check ``sample_log_uniform(low, high, n, rng) -> array of shape (n,)``.

    Expected: samples whose natural log is uniform on [ln low, ln high], i.e. exp(rng.uniform(ln
    low, ln high, n)) (or 10 ** rng.uniform(log10 low, log10 high, n)), drawn from the NumPy
    Generator ``rng`` so that the same seed gives the same samples. A list, array or tensor is
    accepted. Tried with 20,000 samples on [1e-5, 1e-1] and [3e-4, 0.7] (Kolmogorov-Smirnov test of
    the logs). Hidden: [0.5, 2], [1, 1e4], n = 1; fails answers using scipy.stats.loguniform.
    """
    report = Report("log_uniform")
    cases = [(1e-5, 1e-1, 20000, 0), (3e-4, 0.7, 20000, 1)]
    if hidden:
        cases += [(0.5, 2.0, 20000, 2), (1.0, 1e4, 20000, 3), (1e-3, 1e-1, 1, 4)]
    for low, high, n, seed in cases:
        with report.case(f"low={low:g}, high={high:g}, n={n}"):
            _log_uniform_case(report, learner_fn, low, high, n, seed)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            ["scipy.stats.loguniform", "scipy.stats.reciprocal", "course_utils.tuning.log_uniform"],
            lambda: learner_fn(1e-4, 1e-1, 10, np.random.default_rng(0)),
        )
    return report.finish("log of the samples is uniform, in range, reproducible from the rng")


def _search_objective() -> tuple[Callable[[dict[str, Any]], float], list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(dict(params))
        return float(sum(math.log10(abs(v) + 1e-12) ** 2 + v for v in params.values()))

    return objective, calls


def _random_search_case(
    report: Report,
    learner_fn: Callable[..., Any],
    space: dict[str, tuple[str, float, float]],
    n_trials: int,
    seed: int,
) -> None:
    objective, calls = _search_objective()
    trials = learner_fn(objective, space, n_trials, np.random.default_rng(seed))
    if not isinstance(trials, (list, tuple)):
        report.fail(f"should return a list of (params, value) pairs, got {describe(trials)}")
    if len(trials) != n_trials:
        report.fail(f"expected {n_trials} trials, got {len(trials)}")
    if len(calls) != n_trials:
        report.fail(f"the objective should be called once per trial ({n_trials}), got {len(calls)}")
    params_list = []
    for i, trial in enumerate(trials):
        if not (
            isinstance(trial, (tuple, list)) and len(trial) == 2 and isinstance(trial[0], dict)
        ):
            report.fail(f"trial {i} should be a (params_dict, value) pair, got {describe(trial)}")
        params, value = trial
        if set(params) != set(space):
            report.fail(f"trial {i} has parameters {sorted(params)}, expected {sorted(space)}")
        value = _as_float(report, value, f"the value of trial {i}")
        expected_value = objective(dict(params))
        calls.pop()
        if not math.isclose(value, expected_value, rel_tol=1e-9, abs_tol=1e-12):
            report.fail(
                f"trial {i}: value {value:.6g} is not objective(params) = {expected_value:.6g}; "
                "store the objective's value for that trial's params"
            )
        for name, (kind, low, high) in space.items():
            v = float(params[name])
            if not low * (1 - 1e-9) - 1e-12 <= v <= high * (1 + 1e-9) + 1e-12:
                extra = ""
                if kind == "log" and v > 0 and math.log(low) <= math.log10(v) <= math.log(high):
                    extra = ". Looks like: 10 ** uniform(ln low, ln high); mix of log10 and ln"
                elif kind == "log" and math.log(low) <= v <= math.log(high):
                    extra = ". Looks like: the exponent was returned; use exp(u)"
                report.fail(f"trial {i}: {name}={v:.4g} is outside [{low:g}, {high:g}]{extra}")
        params_list.append(params)
    for name in space:
        distinct = len({float(p[name]) for p in params_list})
        if distinct != n_trials:
            report.fail(
                f"only {distinct} distinct values of {name!r} in {n_trials} trials. Looks like: a "
                "grid or a value reused across trials; draw a fresh value of every parameter in "
                "every trial"
            )
    again = learner_fn(_search_objective()[0], space, n_trials, np.random.default_rng(seed))
    if [dict(t[0]) for t in again] != [dict(p) for p in params_list]:
        report.fail(
            "two runs with the same seeded rng gave different trials: draw every sample from the "
            "rng argument, not np.random or random"
        )
    if n_trials < 50:
        return
    for name, (kind, low, high) in space.items():
        values = np.array([float(p[name]) for p in params_list])
        log_u = (np.log(values) - math.log(low)) / (math.log(high) - math.log(low))
        lin_u = (values - low) / (high - low)
        log_d, lin_d = _ks_uniform(log_u), _ks_uniform(lin_u)
        if kind == "log" and log_d > 0.2:
            hint = (
                ". Looks like: sampled uniformly in linear space; sample the exponent uniformly"
                if lin_d < 0.2
                else ""
            )
            report.fail(
                f"{name!r} is a 'log' parameter: its samples should be spread evenly over the "
                f"decades of [{low:g}, {high:g}], but {np.mean(log_u > 0.8):.0%} of them are in "
                f"the top fifth of the log range{hint}"
            )
        if kind == "uniform" and lin_d > 0.2:
            hint = (
                ". Looks like: sampled on a log scale; 'uniform' parameters are sampled linearly"
                if log_d < 0.2
                else ""
            )
            report.fail(
                f"{name!r} is a 'uniform' parameter: its samples should be uniform on [{low:g}, "
                f"{high:g}], but {np.mean(lin_u < 0.5):.0%} are in the lower half{hint}"
            )


def check_random_search(
    learner_fn: Callable[..., list[tuple[dict[str, Any], float]]], *, hidden: bool = False
) -> CheckResult:
    """Check ``random_search(objective, space, n_trials, rng) -> list[(params, value)]``.

    Expected: ``n_trials`` independent trials; each draws every parameter from ``space`` with the
    NumPy Generator ``rng`` (``("log", low, high)``: log-uniform; ``("uniform", low, high)``:
    uniform), calls ``objective(params)`` once and keeps ``(params, value)``, in order. Tried with
    200 trials of ``{"lr": ("log", 1e-6, 1e-1), "dropout": ("uniform", 0.01, 0.9)}``: values in
    range, one new value per trial (not a grid), decades evenly covered for "log", reproducible from
    the rng. Hidden: one parameter, one trial, three parameters.
    """
    report = Report("random_search")
    cases: list[tuple[dict[str, tuple[str, float, float]], int, int]] = [
        ({"lr": ("log", 1e-6, 1e-1), "dropout": ("uniform", 0.01, 0.9)}, 200, 0),
    ]
    if hidden:
        cases += [
            ({"weight_decay": ("log", 1e-6, 1e-2)}, 60, 1),
            ({"lr": ("log", 1e-4, 1.0)}, 1, 2),
            (
                {
                    "lr": ("log", 1e-5, 1e-1),
                    "momentum": ("uniform", 0.5, 0.99),
                    "weight_decay": ("log", 1e-6, 1e-3),
                },
                80,
                3,
            ),
        ]
    for space, n_trials, seed in cases:
        with report.case(f"space={space}, n_trials={n_trials}"):
            _random_search_case(report, learner_fn, space, n_trials, seed)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.tuning.random_search",
                "course_utils.tuning.sample_space",
                "course_utils.tuning.log_uniform",
                "sklearn.model_selection.ParameterSampler",
                "scipy.stats.loguniform",
            ],
            lambda: learner_fn(
                _search_objective()[0], {"lr": ("log", 1e-4, 1.0)}, 3, np.random.default_rng(0)
            ),
        )
    return report.finish("trials are independent draws from the space, scored by the objective")


# --------------------------------------------------------------------------------------------------
# Stage 05: cosine annealing with warm restarts
# --------------------------------------------------------------------------------------------------


def _cosine(t_cur: float, t_i: float, base_lr: float, eta_min: float) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _restart_variants(
    base_lr: float, T_0: int, T_mult: int, eta_min: float
) -> dict[str, Callable[[float], float]]:
    def position(step: float) -> tuple[float, int]:
        return schedules._position_in_cycle(step, T_0, T_mult)

    def one_longer(step: float) -> float:  # `>` instead of `>=`: cycles of T_i + 1 steps
        t_cur, t_i = step, T_0
        while t_cur > t_i:
            t_cur -= t_i + 1
            t_i *= T_mult
        return _cosine(t_cur, t_i, base_lr, eta_min)

    def with_factor(fn: Callable[[float, float], float]) -> Callable[[float], float]:
        def lr(step: float) -> float:
            t_cur, t_i = position(step)
            return fn(math.pi * t_cur / t_i, base_lr)

        return lr

    ref = schedules.cosine_restart_lr
    return {
        "restarts one step late (the sequence is shifted right by one step)": lambda s: (
            base_lr if s < 1 else ref(s - 1, base_lr, T_0, T_mult, eta_min)
        ),
        "restarts one step early (step counted from 1 instead of 0)": lambda s: ref(
            s + 1, base_lr, T_0, T_mult, eta_min
        ),
        "cycles one step too long (`>` instead of `>=` when testing for the restart; the lr should "
        "be base_lr again at T_cur = T_i, not eta_min)": one_longer,
        "ignores T_mult: each cycle should be T_mult times longer than the previous "
        "one": lambda s: ref(s, base_lr, T_0, 1, eta_min),
        "missing the 1 + in (1 + cos(pi * T_cur / T_i)) / 2": with_factor(
            lambda a, b: eta_min + (b - eta_min) * math.cos(a) / 2
        ),
        "missing the 1/2 in (1 + cos(pi * T_cur / T_i)) / 2": with_factor(
            lambda a, b: eta_min + (b - eta_min) * (1 + math.cos(a))
        ),
        "ignores eta_min: lr = eta_min + (base_lr - eta_min) * (1 + cos(...)) / 2": with_factor(
            lambda a, b: b * (1 + math.cos(a)) / 2
        ),
        "adds eta_min without subtracting it from base_lr: "
        "lr = eta_min + (base_lr - eta_min) * ...": (
            with_factor(lambda a, b: eta_min + b * (1 + math.cos(a)) / 2)
        ),
        "cos(T_cur / T_i) without the pi": lambda s: (
            eta_min + (base_lr - eta_min) * (1 + math.cos(position(s)[0] / position(s)[1])) / 2
        ),
        "divides by T_i - 1, so the lr reaches eta_min one step before the restart": lambda s: (
            _cosine(position(s)[0], max(position(s)[1] - 1, 1), base_lr, eta_min)
        ),
    }


def check_cosine_restarts(learner_fn: Callable[..., float], *, hidden: bool = False) -> CheckResult:
    """Check ``cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float``.

    Expected: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2 with T_cur the
    steps since the last restart and T_i the current cycle length (T_0, then T_0 * T_mult, ...): the
    lr of ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` after ``step`` calls of
    ``scheduler.step()``. Called positionally as ``learner_fn(step, base_lr, T_0, T_mult, eta_min)``
    for steps 0..59 (T_0=10, T_mult=1) and 0..99 (T_0=5, T_mult=2, eta_min=1e-3). Hidden: T_0=1,
    T_mult=3; fractional steps (epoch + batch / batches); fails answers using the torch scheduler.
    """
    report = Report("cosine_restarts")
    cases: list[tuple[float, int, int, float, list[float]]] = [
        (0.1, 10, 1, 0.0, [float(s) for s in range(60)]),
        (0.05, 5, 2, 1e-3, [float(s) for s in range(100)]),
    ]
    if hidden:
        cases += [
            (1.0, 1, 3, 0.0, [float(s) for s in range(41)]),
            (0.1, 3, 2, 0.01, [s / 4 for s in range(0, 90)]),
            (0.3, 7, 1, 0.05, [float(s) for s in range(50)]),
        ]
    for base_lr, T_0, T_mult, eta_min, steps in cases:
        label = f"base_lr={base_lr}, T_0={T_0}, T_mult={T_mult}, eta_min={eta_min}"
        with report.case(label):
            expected = [
                schedules.cosine_restart_lr(s, base_lr, T_0, T_mult, eta_min) for s in steps
            ]
            got = []
            for s in steps:
                step = int(s) if float(s).is_integer() else s
                got.append(
                    _as_float(
                        report,
                        learner_fn(step, base_lr, T_0, T_mult, eta_min),
                        f"the lr at step {step}",
                    )
                )
            wrong = [
                i
                for i, (g, e) in enumerate(zip(got, expected, strict=True))
                if not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-9)
            ]
            if not wrong:
                continue
            i = wrong[0]
            message = (
                f"at step {steps[i]:g} expected lr {expected[i]:.6g}, got {got[i]:.6g} "
                f"({len(wrong)} of {len(steps)} steps differ)"
            )
            variants = _restart_variants(base_lr, T_0, T_mult, eta_min)
            for hint, variant in variants.items():
                try:
                    values = [variant(s) for s in steps]
                except Exception:  # a variant undefined here matches nothing
                    continue
                if all(
                    math.isclose(g, v, rel_tol=1e-6, abs_tol=1e-9)
                    for g, v in zip(got, values, strict=True)
                ):
                    message += f". Looks like: {hint}"
                    break
            report.fail(message)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
                "course_utils.schedules.cosine_restart_lr",
            ],
            lambda: learner_fn(3, 0.1, 10, 1, 0.0),
        )
    return report.finish(
        "matches CosineAnnealingWarmRestarts step by step, with and without T_mult"
    )


# --------------------------------------------------------------------------------------------------
# Stage 06: ensemble averaging
# --------------------------------------------------------------------------------------------------


def _ensemble_variants(logits: list[torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    stacked = torch.stack(logits)
    classes = stacked.shape[-1]
    return {
        "averaged the logits, then applied softmax; apply softmax to each model's logits, then "
        "average the probabilities": lambda: stacked.mean(0).softmax(-1),
        "forgot the softmax: average probabilities, not logits": lambda: stacked.mean(0),
        "averaged argmax votes (hard voting); average the softmax probabilities": lambda: (
            F.one_hot(stacked.argmax(-1), classes).to(stacked.dtype).mean(0)
        ),
        "softmax over the models axis; softmax over the classes, dim=-1": lambda: stacked.softmax(
            0
        ).mean(0),
        "softmax over the samples axis; softmax over the classes, dim=-1": lambda: stacked.softmax(
            1
        ).mean(0),
        "summed the probabilities; divide by the number of models (take the mean)": lambda: (
            stacked.softmax(-1).sum(0)
        ),
        "averaged log-probabilities; average the probabilities themselves": lambda: (
            stacked.log_softmax(-1).mean(0)
        ),
    }


def _ensemble_case(
    report: Report,
    learner_fn: Callable[..., Any],
    logits: list[torch.Tensor],
    as_tuple: bool = False,
) -> None:
    m, (n, c) = len(logits), logits[0].shape
    expected = ensemble.average_probabilities(logits)
    got = learner_fn(tuple(t.clone() for t in logits) if as_tuple else [t.clone() for t in logits])
    if not isinstance(got, torch.Tensor):
        report.fail(f"should return a tensor of shape ({n}, {c}), got {type(got).__name__}")
    shape = tuple(got.shape)
    if shape != (n, c):
        reasons = {
            (m, c): "averaged over the samples axis; average over the models (the list), dim=0 of "
            "torch.stack(logits_list)",
            (m, n): "averaged over the classes axis; average over the models (the list)",
            (m, n, c): "did not average over the models",
        }
        reason = reasons.get(shape) if len({m, n, c}) == 3 else None
        report.fail(
            f"{m} models, {n} samples, {c} classes: output has shape {shape}, expected ({n}, {c})"
            + (f". Looks like: {reason}" if reason else "")
        )
    if got.dtype != expected.dtype:
        report.fail(f"output dtype should match the logits ({expected.dtype}), got {got.dtype}")
    largest = float(torch.stack(logits).abs().max())
    if torch.isfinite(expected).all() and not torch.isfinite(got).all():
        report.fail(
            f"the output has nan/inf for logits as large as {largest:.0f}. Looks like: exp "
            "overflowed; use torch.softmax, which subtracts the max first"
        )
    hint = _first_match(
        got,
        _ensemble_variants(logits),
        lambda g, v: (
            tuple(v.shape) == tuple(g.shape)
            and torch.allclose(g.detach().double(), v.double(), rtol=1e-4, atol=1e-6)
        ),
    )
    report.expect_close(got, expected, what="probabilities", hint=hint, rtol=1e-4, atol=1e-6)


def check_ensemble_average(
    learner_fn: Callable[[Sequence[torch.Tensor]], torch.Tensor], *, hidden: bool = False
) -> CheckResult:
    """Check ``ensemble_average(logits_list) -> Tensor (N, C)``.

    Expected: the mean over the M models of ``softmax(logits, dim=-1)``, each row a probability
    distribution, with the logits' dtype and device. ``logits_list`` is a list of M tensors (N, C).
    Tried on 3 models x 5 samples x 4 classes, one model, float64 logits, logits of size ~1000 and
    meta tensors. Hidden: 5 models x 1 sample x 2 classes, a tuple input.
    """
    report = Report("ensemble_average")
    gen = torch.Generator().manual_seed(0)
    cases = [
        (
            "3 models, 5 samples, 4 classes",
            [3 * torch.randn(5, 4, generator=gen) for _ in range(3)],
        ),
        ("one model", [torch.randn(6, 3, generator=gen)]),
        (
            "float64 logits",
            [torch.randn(4, 3, generator=gen, dtype=torch.float64) for _ in range(2)],
        ),
        ("large logits (~1000)", [1000 * torch.randn(5, 4, generator=gen) for _ in range(3)]),
    ]
    if hidden:
        cases += [
            ("5 models, 1 sample, 2 classes", [torch.randn(1, 2, generator=gen) for _ in range(5)]),
            ("2 models, 7 samples, 10 classes", [torch.randn(7, 10, generator=gen)] * 2),
        ]
    for label, logits in cases:
        with report.case(label):
            _ensemble_case(report, learner_fn, logits)
    if hidden:
        with report.case("a tuple of logits"):
            _ensemble_case(
                report, learner_fn, [torch.randn(3, 4, generator=gen)] * 3, as_tuple=True
            )
    with report.case("on the meta device"):
        logits = meta_like((5, 4), (5, 4), (5, 4))
        try:
            got = learner_fn(logits)
        except Exception as error:
            if _device_error(error):
                report.fail(_meta_failure(error))
            raise
        _expect_meta(report, got, (5, 4))
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.ensemble.average_probabilities",
                "course_utils.ensemble.ensemble_predict",
            ],
            lambda: learner_fn([torch.randn(2, 3, generator=gen)]),
        )
    return report.finish("mean of the models' softmax probabilities, stable for large logits")
