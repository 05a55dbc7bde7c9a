"""Check for stage 02's ``batch_dependence(model, x, index) -> Tensor (N,)``.

The L2 norm, per sample, of the gradient of ``model(x)[index].sum()`` with respect to the input batch ``x``
(Karpathy's "use backprop to chart dependencies").

What the check verifies:

- value: the norms against ``course_utils.sanity.batch_dependence`` on an independent MLP, a model with
  a planted view-instead-of-permute bug and BatchNorm in train mode (hidden: eval mode, a conv net); a
  classic bug (sum of all outputs, eval mode, squared norms, parameter gradients) is named only when the
  answer's numbers match it.
- gradient: taken with respect to the input; two calls on the same x must not accumulate.
- input untouched (on every case, also when the values are wrong): the caller's x keeps its values,
  requires_grad=False and no .grad; the model's parameters get no .grad (a training step after the call
  would add it); the model keeps its mode.
- every argument: index first, middle and last; 2-D, 3-D and image batches; the meta device.
- contract: a tensor of shape (N,) on x's device; hidden: no call of the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils import sanity
from course_utils.checks._guards import (
    meta_like,
    one_cpu_thread,
)
from course_utils.checks._library_calls import _reference_case
from course_utils.checks._meta import _device_error, _expect_meta, _meta_failure
from course_utils.checks._report import CheckResult, Report, describe
from course_utils.checks._values import _seeded

__all__ = ["check_batch_independence"]


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


def _expect_caller_untouched(
    report: Report, model: nn.Module, x: torch.Tensor, given_model: nn.Module, given_x: torch.Tensor
) -> None:
    """The caller's batch and model as they were: same values, no requires_grad or .grad left on x,
    no .grad left on the parameters, the same train/eval mode. Noted without stopping the case, so
    an answer whose norms are also wrong is told both."""
    if given_x.requires_grad or given_x.grad is not None:
        report.note(
            "changes its input in place (x): the caller's batch now has requires_grad=True"
            + (" and a .grad" if given_x.grad is not None else "")
            + "; differentiate a copy, x.detach().clone().requires_grad_(True)"
        )
    if not torch.equal(given_x.detach(), x):
        report.note("changes its input in place (x): the values of the caller's batch changed")
    left = [name for name, p in given_model.named_parameters() if p.grad is not None]
    if left:
        report.note(
            f"leaves gradients in the model's parameters ({', '.join(left[:3])}"
            + (", ..." if len(left) > 3 else "")
            + ".grad): the next optimizer step of the caller would add them; take the gradient "
            "with torch.autograd.grad(out, x), which fills no .grad"
        )
    if given_model.training != model.training:
        mode = "eval" if model.training else "train"
        report.note(
            f"changes its input in place (model): the caller's model was left in {mode} mode; "
            "use the model in the mode it is given"
        )


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
    given_model, given_x = copy.deepcopy(model), x.clone()
    for p in given_model.parameters():
        p.grad = None
    got = learner_fn(given_model, given_x, index)
    _expect_caller_untouched(report, model, x, given_model, given_x)
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
        shared, twice = x_flat.clone(), copy.deepcopy(mlp)
        learner_fn(twice, shared, 0)
        got = learner_fn(twice, shared, 3)
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
