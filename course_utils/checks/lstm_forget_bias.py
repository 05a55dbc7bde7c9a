"""Check for stage 03's ``set_forget_bias(lstm, value=1.0)`` (LSTM forget gate, b_if + b_hf = value): the forget gate's
slice of the biases set, the other gates untouched, the same parameter objects, the module returned.

Coverage:

- value: the effective forget bias b_if + b_hf of every layer and direction equals value; the other
  gates' effective biases and every weight unchanged;
- gradient: not applicable (an initialisation); the parameters must stay trainable leaves, and no
  ``.grad`` may be left on them (nothing is run backward);
- input untouched: only the forget gate's slice of the biases changes;
- every argument: value left at its default 1.0 and 0, 1, 1.5, 2; one and three layers,
  bidirectional, ``proj_size``, float64, ``nn.LSTMCell``;
- contract: the same ``nn.Parameter`` objects (an optimizer built before the call keeps training
  them), the module returned, meta modules stay on meta, no call of the course's version (hidden).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils import init as ref_init
from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    one_cpu_thread,
)
from course_utils.checks._module_cases import (
    NO_GRAD_HINT,
    _expect_returns_module,
    _expect_same_parameters,
    _guard,
    _known_errors,
    _meta_run,
    _no_reference_case,
    _seeded_rng,
)
from course_utils.checks._report import CheckResult, Report, describe

__all__ = ["check_lstm_forget_bias"]

FORGET_BIAS_BANNED = ["course_utils.init.set_lstm_forget_bias"]


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _forget_bias_hint(
    before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], value: float
) -> str | None:
    """Name the classic bug from per-(layer, direction) gate biases of shape (4, H)."""

    def near(t: torch.Tensor, v: float | torch.Tensor) -> bool:
        return bool(torch.allclose(t, torch.as_tensor(v, dtype=t.dtype).expand_as(t), atol=1e-5))

    keys = list(after)
    right = [k for k in keys if near(after[k][1], value)]
    untouched = [k for k in keys if near(after[k][1], before[k][1])]
    if all(near(after[k][1], 2 * value) for k in keys):
        return (
            f"both bias_ih and bias_hh were filled: the effective forget bias is b_if + b_hf = "
            f"{2 * value:g}, not {value:g}; set bias_ih[H:2H] = value and bias_hh[H:2H] = 0"
        )
    if value != 1 and all(near(after[k][1], 1.0) for k in keys):
        return "the value argument was ignored (forget bias 1 everywhere)"
    for gate, name in ((0, "input"), (2, "cell (g)"), (3, "output")):
        if untouched and all(
            near(after[k][gate], value) or near(after[k][gate], 2 * value) for k in untouched
        ):
            return (
                f"wrote into the {name} gate's slice [{gate}H:{gate + 1}H]; the gate order is "
                f"i, f, g, o, so the forget gate is rows [H:2H]"
            )
    if right and untouched and set(right) | set(untouched) == set(keys):
        if all(k.startswith("l0") for k in right) and any(not k.startswith("l0") for k in keys):
            return (
                "only the first layer was set; loop over every layer's parameters "
                "(bias_ih_l0, bias_ih_l1, ...), e.g. with lstm.named_parameters()"
            )
        if all("reverse" not in k for k in right) and any("reverse" in k for k in keys):
            return (
                "only the forward direction was set; a bidirectional LSTM has its own "
                "bias_ih_lK_reverse / bias_hh_lK_reverse parameters"
            )
    return None


def _check_lstm_after(
    report: Report,
    lstm: nn.Module,
    before_raw: dict[str, torch.Tensor],
    before: dict[str, torch.Tensor],
    value: float,
) -> None:
    for name, param in lstm.named_parameters():
        report.expect(
            isinstance(param, nn.Parameter) and param.requires_grad and param.is_leaf,
            f"{name} is no longer a trainable nn.Parameter; change values in place",
        )
        report.expect(param.device == before_raw[name].device, f"{name} moved to {param.device}")
        if "weight" in name:
            report.expect(
                torch.equal(param.detach(), before_raw[name]),
                f"{name} changed; only the biases should",
            )
    after = ref_init.effective_gate_biases(lstm)
    hint = _forget_bias_hint(before, after, value)
    for key in after:
        got = after[key][1]
        expected = torch.full_like(got, value)
        if not torch.allclose(got, expected, atol=1e-5):
            report.fail(
                f"effective forget bias b_if + b_hf of {key} is {describe(got)}, expected "
                f"{value:g} everywhere" + (f". Looks like: {hint}" if hint else "")
            )
    for key in after:
        for gate, name in ((0, "input"), (2, "cell (g)"), (3, "output")):
            if not torch.allclose(after[key][gate], before[key][gate], atol=1e-5):
                zeroed = bool((after[key][gate] == 0).all())
                report.fail(
                    f"the {name} gate's effective bias of {key} changed"
                    + (" (zeroed)" if zeroed else "")
                    + "; set only the forget gate's slice [H:2H] and leave the other gates as "
                    "they were"
                )


@one_cpu_thread
def check_lstm_forget_bias(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``set_forget_bias(lstm, value=1.0)``, which must make b_if + b_hf = value in place.

    Tries nn.LSTM with one layer (default value), three bidirectional layers, two layers with
    value=2, and nn.LSTMCell; checks the effective forget bias of every layer and direction, that
    the other gates' effective biases and all weights are unchanged, that parameters stay trainable
    leaves on their device, and meta modules. Names: both bias vectors filled (effective 2), wrong
    gate slice, first layer only, forward direction only, value ignored, other gates changed,
    in-place change outside ``torch.no_grad()``. ``hidden=True`` adds proj_size, float64, value=0,
    and bans the course's ``set_lstm_forget_bias``.
    """
    report = Report("lstm_forget_bias")
    cases: list[tuple[str, Callable[[], nn.Module], float | None]] = [
        ("nn.LSTM(4, 6), value left at its default 1.0", lambda: nn.LSTM(4, 6), None),
        (
            "nn.LSTM(3, 5, num_layers=3, bidirectional=True), value=1.0",
            lambda: nn.LSTM(3, 5, num_layers=3, bidirectional=True),
            1.0,
        ),
        ("nn.LSTM(4, 6, num_layers=2), value=2.0", lambda: nn.LSTM(4, 6, num_layers=2), 2.0),
        ("nn.LSTMCell(5, 4), value=1.0", lambda: nn.LSTMCell(5, 4), 1.0),
    ]
    if hidden:
        cases += [
            (
                "nn.LSTM(4, 8, num_layers=2, proj_size=3), value=1.0",
                lambda: nn.LSTM(4, 8, num_layers=2, proj_size=3),
                1.0,
            ),
            (
                "float64 nn.LSTM(3, 4, bidirectional=True), value=1.5",
                lambda: nn.LSTM(3, 4, bidirectional=True, dtype=torch.float64),
                1.5,
            ),
            ("nn.LSTMCell(3, 2), value=0.0", lambda: nn.LSTMCell(3, 2), 0.0),
        ]
    for index, (description, make, value) in enumerate(cases):
        with report.case(description):
            with _seeded_rng(100 + index):
                lstm = make()
            before_raw = _snapshot(lstm)
            before = ref_init.effective_gate_biases(lstm)
            params = dict(lstm.named_parameters())
            with (
                _guard(hidden, FORGET_BIAS_BANNED),
                _seeded_rng(200 + index),
                _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
            ):
                returned = learner_fn(lstm) if value is None else learner_fn(lstm, value)
            _check_lstm_after(report, lstm, before_raw, before, 1.0 if value is None else value)
            _expect_same_parameters(report, lstm, params)
            graded = [name for name, p in lstm.named_parameters() if p.grad is not None]
            report.expect(
                not graded,
                f"leaves .grad on {', '.join(graded)}: an initialisation changes values only; "
                "run nothing backward (the next optimizer step would apply that gradient)",
            )
            _expect_returns_module(report, returned, lstm, "set_forget_bias")

    with report.case("runs on a meta-device nn.LSTM(4, 6, num_layers=2, bidirectional=True)"):
        lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, device="meta")
        with (
            _meta_run(report),
            _guard(hidden, FORGET_BIAS_BANNED),
            _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
        ):
            learner_fn(lstm, 1.0)
        moved = [name for name, p in lstm.named_parameters() if p.device.type != "meta"]
        report.expect(not moved, f"parameters {moved} left the meta device: {WRONG_DEVICE_HINT}")

    if hidden:
        _no_reference_case(report, learner_fn, FORGET_BIAS_BANNED, "the forget-bias init")
    return report.finish(
        "b_if + b_hf = value in every layer and direction of nn.LSTM and nn.LSTMCell, other gates "
        "and weights untouched, parameters still trainable, runs on meta modules"
    )
