"""Check for stage 02's ``init_final_bias(layer, priors)`` (final-layer bias from class priors): the bias set to
the log priors (or logit of the prior for a binary output), weights untouched, the same parameter objects,
the module returned.

What the check verifies:

- value: the bias against ``course_utils.init.init_final_bias_from_priors``; the expected initial
  cross-entropy on random features equals the prior's entropy (weights scaled down); a classic bug (log10,
  logit for softmax, unnormalised, no log, sign, unchanged bias) is named only when the bias matches it.
- input untouched: the priors (tensor or list) compared with a copy kept aside, also when the bias is
  wrong (both are told).
- every argument: priors as probabilities, counts, a Python list, int64 counts (hidden), float64; 2, 3, 4,
  5, 10 and 1000 classes; a float64 layer (hidden); a single logit with ``binary=True``; the meta device.
- contract: the same parameter objects (an optimizer built before keeps working), still trainable
  ``nn.Parameter``s of the same dtype and shape, the layer returned; hidden: no call of the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import init as ref_init
from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    one_cpu_thread,
)
from course_utils.checks._module_cases import (
    NO_GRAD_HINT,
    _diagnose,
    _expect_returns_module,
    _expect_same_parameters,
    _generator,
    _guard,
    _known_errors,
    _matches,
    _meta_run,
    _no_reference_case,
    _seeded_rng,
)
from course_utils.checks._report import CheckResult, Report, describe

__all__ = ["check_final_bias_init"]

FINAL_BIAS_BANNED = ["course_utils.init.init_final_bias_from_priors"]


FINAL_BIAS_HINTS = {
    "log10": "log10 instead of the natural log; softmax uses e^b, so b_c = ln p_c (torch.log)",
    "logit": "the binary logit ln(p/(1-p)) used for a softmax layer; with softmax, b_c = ln p_c",
    "unnormalised": "the priors were not normalised: b_c = ln(count_c) is ln p_c plus a constant. "
    "The softmax is the same, but the exercise asks for ln of priors that sum to 1 "
    "(p = priors / priors.sum())",
    "no_log": "the priors themselves used as the bias; take the log: b_c = ln p_c",
    "negated": "sign flipped: b_c = ln p_c (negative numbers, largest for the most common class)",
    "centred": "ln p shifted to mean 0; the softmax is the same, but the exercise asks for "
    "b_c = ln p_c exactly",
    "untouched": "the bias did not change; write into it in place: "
    "`with torch.no_grad(): layer.bias.copy_(...)`",
    "binary_log": "ln π used for a single sigmoid logit; a sigmoid needs σ(b) = π, so b = ln(π/(1-π))",
    "binary_log10": "log10 instead of the natural log: b = ln(π/(1-π))",
    "binary_negated": "sign flipped: b = ln(π/(1-π)) (negative when π < 0.5)",
    "binary_no_log": "π itself used as the bias; b = ln(π/(1-π))",
}


def _final_bias_variants(layer_before: nn.Linear, priors: torch.Tensor) -> dict[str, torch.Tensor]:
    p = priors.double()
    old = layer_before.bias.detach().double()
    if layer_before.out_features == 1:
        return {
            "untouched": old,
            "binary_log": torch.log(p).reshape(1),
            "binary_log10": torch.log10(p / (1 - p)).reshape(1),
            "binary_negated": torch.log((1 - p) / p).reshape(1),
            "binary_no_log": p.reshape(1),
        }
    q = p / p.sum()
    return {
        "untouched": old,
        "log10": torch.log10(q),
        "logit": torch.log(q / (1 - q)),
        "unnormalised": torch.log(p),
        "no_log": q,
        "negated": -torch.log(q),
        "centred": torch.log(q) - torch.log(q).mean(),
    }


def _expected_initial_loss(layer: nn.Linear, priors: torch.Tensor, features: torch.Tensor) -> float:
    """Cross-entropy averaged over inputs, with labels distributed as the priors (exact
    expectation, no sampling)."""
    with torch.no_grad():
        logits = layer(features.to(layer.weight.dtype)).double()
        if layer.out_features == 1:
            pi = float(priors.reshape(-1)[0])
            z = logits.reshape(-1)
            return float((pi * F.softplus(-z) + (1 - pi) * F.softplus(z)).mean())
        p = (priors / priors.sum()).double()
        return float(-(F.log_softmax(logits, dim=1) * p).sum(1).mean())


def _entropy(priors: torch.Tensor, binary: bool) -> float:
    p = priors.double().reshape(-1)
    if binary:
        p = torch.cat([p, 1 - p])
    p = p / p.sum()
    return float(-(p * torch.log(p)).sum())


def _same_priors(priors: Any, kept: Any) -> bool:
    if isinstance(kept, torch.Tensor):
        return isinstance(priors, torch.Tensor) and torch.equal(priors, kept)
    return bool(priors == kept)


@one_cpu_thread
def check_final_bias_init(
    learner_fn: Callable[..., Any], *, hidden: bool = False, binary: bool = False
) -> CheckResult:
    """Grade ``init_final_bias(layer, priors)``: set an ``nn.Linear`` output layer so the untrained
    model predicts the class priors.

    Spec: priors are C positive class frequencies or counts (tensor or list); afterwards
    ``layer.bias == ln(priors / priors.sum())`` and the weights are small enough (scaled down, or
    zeroed) that the expected initial cross-entropy on random unit-variance features is the entropy
    H of the prior within 0.01 H + 0.001 nats (weights x0.1 pass, default-scale weights fail).
    With ``binary=True`` the exercise also covers a single-logit layer (out_features == 1) given
    the positive rate π as a float: b = ln(π/(1-π)), initial BCE = H(π). Names: log10, the logit used for softmax, unnormalised priors, missing log, sign flip,
    unchanged bias, weights left at their default scale. ``hidden=True`` adds two classes, very
    skewed priors, integer counts and a float64 layer, and bans the course's own function.
    """
    report = Report("final_bias_init")
    gen = _generator(2019)

    def run_case(
        description: str,
        in_features: int,
        out_features: int,
        priors: Any,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        with report.case(description):
            with _seeded_rng(in_features * 31 + out_features):
                layer = nn.Linear(in_features, out_features, dtype=dtype)
            before = copy.deepcopy(layer)
            reference = ref_init.init_final_bias_from_priors(copy.deepcopy(layer), priors)
            priors_t = torch.as_tensor(priors, dtype=torch.float64)
            bias_param = layer.bias
            kept = copy.deepcopy(priors)
            params = dict(layer.named_parameters())
            with (
                _guard(hidden, FINAL_BIAS_BANNED),
                _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
            ):
                returned = learner_fn(layer, priors)
            if not _same_priors(priors, kept):  # told whether or not the bias is right
                report.note(
                    f"changes its input in place (priors): {describe(kept)} became "
                    f"{describe(priors)}; normalise a copy, p = priors / priors.sum()"
                )
            report.expect(
                isinstance(layer.bias, nn.Parameter) and layer.bias.requires_grad,
                "layer.bias is no longer a trainable nn.Parameter; change it in place",
            )
            report.expect(
                layer.bias.dtype == bias_param.dtype and layer.bias.shape == bias_param.shape,
                f"layer.bias became {describe(layer.bias)}, expected "
                f"dtype {bias_param.dtype} and shape {tuple(bias_param.shape)}",
            )
            got, expected = layer.bias.detach(), reference.bias.detach()
            hint = None
            if not _matches(got, expected):
                hint = _diagnose(got, _final_bias_variants(before, priors_t), FINAL_BIAS_HINTS)
            report.expect_close(got, expected, what="layer.bias", hint=hint)
            features = torch.randn(512, in_features, generator=gen)
            loss = _expected_initial_loss(layer, priors_t, features)
            entropy = _entropy(priors_t, out_features == 1)
            if abs(loss - entropy) > 0.01 * entropy + 0.001:
                with torch.no_grad():
                    spread = float((features.to(dtype) @ layer.weight.T).std())
                report.fail(
                    f"expected initial loss {loss:.3f} nats, but the prior's entropy is "
                    f"{entropy:.3f}: the weights still add noise of std {spread:.2f} to the logits. "
                    "Looks like: weights left at their default scale; scale them down (e.g. "
                    "layer.weight.mul_(0.01)) or zero them so the bias sets the first predictions"
                )
            _expect_same_parameters(report, layer, params)
            _expect_returns_module(report, returned, layer, "init_final_bias")

    run_case(
        "4 classes, priors tensor([0.1, 0.2, 0.3, 0.4])", 32, 4, torch.tensor([0.1, 0.2, 0.3, 0.4])
    )
    run_case(
        "10 classes, priors given as class counts (not normalised)",
        64,
        10,
        torch.tensor([500.0, 50, 120, 300, 30, 80, 200, 400, 250, 70]),
    )
    run_case("3 classes, priors as a Python list", 16, 3, [0.7, 0.2, 0.1])
    run_case(
        "1000 classes, Zipf-like counts (float64 tensor)",
        16,
        1000,
        1000.0 / torch.arange(1, 1001, dtype=torch.float64),
    )
    if binary:
        run_case("binary single logit, π = 0.1 (1:9 imbalance)", 32, 1, 0.1)
        run_case("binary single logit, π = 0.01 (RetinaNet)", 16, 1, 0.01)

    with report.case("runs on a meta-device nn.Linear(8, 3)"):
        layer = nn.Linear(8, 3, device="meta")
        with _meta_run(report), _guard(hidden, FINAL_BIAS_BANNED):
            learner_fn(layer, [0.2, 0.3, 0.5])
        moved = [name for name, p in layer.named_parameters() if p.device.type != "meta"]
        report.expect(not moved, f"parameters {moved} left the meta device: {WRONG_DEVICE_HINT}")

    if hidden:
        run_case("2 classes through a softmax layer", 8, 2, torch.tensor([0.9, 0.1]))
        run_case(
            "very skewed priors (0.998 / 0.001 / 0.001)", 16, 3, torch.tensor([0.998, 0.001, 0.001])
        )
        run_case("integer class counts (int64 tensor)", 16, 4, torch.tensor([30, 10, 50, 10]))
        run_case(
            "float64 layer", 16, 5, torch.tensor([0.3, 0.3, 0.2, 0.1, 0.1]), dtype=torch.float64
        )
        _no_reference_case(report, learner_fn, FINAL_BIAS_BANNED, "the bias initialisation")
    return report.finish(
        "bias = ln of the normalised priors"
        + (" (ln(π/(1-π)) for a single logit)" if binary else "")
        + ", weights small enough that the initial loss equals the prior's entropy"
    )
