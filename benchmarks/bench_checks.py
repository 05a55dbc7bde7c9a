"""Time every graded exercise's check on a correct answer: ``check_x(answer)`` and ``hidden=True``.

    python benchmarks/bench_checks.py [--out benchmarks/checks.md] [--rounds 3] [--only NAME ...]

A learner waits for the visible check after each attempt, and grading runs the hidden one; each
should answer within ``BUDGET`` (1 s) warm on 2 cores. "Warm" is the fastest of ``--rounds`` calls
after a first call in the same process (which pays imports, torch's start-up and the embedded
MNIST load). Each row gives the first call, then the warm wall-clock and the warm process CPU time
(steadier than wall-clock on a shared machine: the checks run on one thread, so CPU ~ wall on an
idle machine). The answers are correct implementations (the course's references for the visible
check; for the hidden check, code that does not call the reference, so no case stops at a tripwire).
The table goes to ``--out`` with the machine, torch version and load average; the exit status is 1
if a warm CPU time is above the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils import early_stopping, ensemble, sanity, schedules, tuning  # noqa: E402
from course_utils import init as ref_init  # noqa: E402
from course_utils import layers as ref_layers  # noqa: E402
from course_utils.checks import MODULES, all_checks  # noqa: E402
from course_utils.data import explore  # noqa: E402

BUDGET = 1.0


# --- correct answers written without the references (the hidden checks ban those) -------------------


def _pairs_by_bytes(images: torch.Tensor) -> list[tuple[int, int]]:
    groups: dict[bytes, list[int]] = {}
    for i, image in enumerate(images.cpu().numpy()):
        groups.setdefault(image.tobytes(), []).append(i)
    return [
        (a, b)
        for members in groups.values()
        for k, a in enumerate(members)
        for b in members[k + 1 :]
    ]


def near_by_correlation(images: torch.Tensor, threshold: float = 0.015) -> list[tuple[int, int]]:
    x = (images.flatten(1).double() - 0.15).clamp(min=0)
    x = x - x.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    distance = 1 - x @ x.T
    exact = set(_pairs_by_bytes(images))
    rows, cols = torch.nonzero(torch.triu(distance < threshold, diagonal=1), as_tuple=True)
    return [
        (int(i), int(j)) for i, j in zip(rows, cols, strict=True) if (int(i), int(j)) not in exact
    ]


def rank_by_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.argsort(F.cross_entropy(logits, labels, reduction="none"), descending=True)


def final_bias(layer: torch.nn.Linear, priors: Any) -> torch.nn.Linear:
    with torch.no_grad():
        p = torch.as_tensor(priors, dtype=torch.float64).reshape(-1)
        target = torch.log(p / (1 - p)) if layer.out_features == 1 else torch.log(p / p.sum())
        layer.bias.copy_(target.to(layer.bias.dtype))
        layer.weight.mul_(0.01)
    return layer


def batch_dependence(model: torch.nn.Module, x: torch.Tensor, index: int) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[index].sum(), leaf)
    return grad.reshape(x.shape[0], -1).norm(dim=1)


def overfit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=-1, correction=0, keepdim=True)
    y = ((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


class ResidualBlock(torch.nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def forget_bias(lstm: torch.nn.LSTM, value: float = 1.0) -> torch.nn.LSTM:
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                h = p.shape[0] // 4
                p[h : 2 * h] = value
            elif name.startswith("bias_hh"):
                h = p.shape[0] // 4
                p[h : 2 * h] = 0.0
    return lstm


def dropout(x: torch.Tensor, keep_prob: float, training: bool = True) -> torch.Tensor:
    if not training or keep_prob == 1.0:
        return x
    mask = torch.rand(x.shape, device=x.device) < keep_prob
    return x * mask / keep_prob


def should_stop(val_losses, patience, min_delta=0.0) -> bool:
    best, waited = math.inf, 0
    for loss in val_losses:
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited >= patience


def smoothed_ce(logits: torch.Tensor, targets: torch.Tensor, eps: float) -> torch.Tensor:
    log_p = F.log_softmax(logits, dim=1)
    c = logits.shape[1]
    q = torch.full_like(log_p, eps / c).scatter(1, targets[:, None], 1 - eps + eps / c)
    return -(q * log_p).sum(1).mean()


def flood(loss: torch.Tensor, b: float) -> torch.Tensor:
    return (loss - b).abs() + b


def log_uniform(low: float, high: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def random_search(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {}
        for name, (kind, low, high) in space.items():
            params[name] = (
                float(log_uniform(low, high, 1, rng)[0])
                if kind == "log"
                else float(rng.uniform(low, high))
            )
        trials.append((params, objective(params)))
    return trials


def cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float:
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    return t**2 * F.kl_div(
        F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="batchmean"
    )


def ensemble_average(logits_list):
    return torch.stack([z.softmax(-1) for z in logits_list]).mean(0)


# check name -> (visible answer, hidden answer, keyword options)
ANSWERS: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]] = {
    "check_find_exact_duplicates": (explore.find_exact_duplicates, _pairs_by_bytes, {}),
    "check_find_near_duplicates": (explore.find_near_duplicates, near_by_correlation, {}),
    "check_rank_label_errors": (explore.rank_label_errors, rank_by_loss, {}),
    "check_expected_initial_loss": (sanity.expected_initial_loss, math.log, {}),
    "check_final_bias_init": (final_bias, final_bias, {"binary": True}),
    "check_batch_independence": (sanity.batch_dependence, batch_dependence, {}),
    "check_overfit_one_batch": (overfit, overfit, {}),
    "check_focal_loss": (focal, focal, {}),
    "check_group_norm": (ref_layers.group_norm, group_norm, {}),
    "check_residual_block": (ref_layers.ResidualBlock, ResidualBlock, {}),
    "check_lstm_forget_bias": (ref_init.set_lstm_forget_bias, forget_bias, {}),
    "check_dropout": (ref_layers.dropout, dropout, {}),
    "check_early_stopping": (early_stopping.should_stop, should_stop, {}),
    "check_label_smoothing": (smoothed_ce, smoothed_ce, {}),
    "check_flooding": (flood, flood, {}),
    "check_log_uniform": (
        lambda low, high, n, rng: tuning.log_uniform(low, high, n, rng),
        log_uniform,
        {},
    ),
    "check_random_search": (random_search, random_search, {}),
    "check_cosine_restarts": (schedules.cosine_restart_lr, cosine_restart_lr, {}),
    "check_distillation_loss": (distillation, distillation, {}),
    "check_ensemble_average": (ensemble.average_probabilities, ensemble_average, {}),
}


def _timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    with contextlib.redirect_stdout(io.StringIO()):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        return time.perf_counter() - wall, time.process_time() - cpu, result


def measure(name: str, rounds: int) -> dict[str, Any]:
    check = all_checks()[name]
    visible, hidden, options = ANSWERS[name]
    row: dict[str, Any] = {"name": name, "module": MODULES[name]}
    row["first"], _, _ = _timed(lambda: check(visible, **options))
    for label, answer, flag in (("visible", visible, False), ("hidden", hidden, True)):
        _timed(lambda answer=answer, flag=flag: check(answer, hidden=flag, **options))  # warm-up
        runs = [
            _timed(lambda answer=answer, flag=flag: check(answer, hidden=flag, **options))
            for _ in range(rounds)
        ]
        row[f"{label}_wall"] = min(r[0] for r in runs)
        row[f"{label}_cpu"] = min(r[1] for r in runs)
        row[f"{label}_passed"] = runs[-1][2].passed
    return row


def table(rows: list[dict[str, Any]], rounds: int) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        "# Check times",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/bench_checks.py` on "
        f"{platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}, torch "
        f"{torch.__version__}. **The machine was shared while measuring: load average {load} (1, 5, 15 min) "
        f"on {os.cpu_count()} cores**, so wall-clock times are inflated; the process CPU time (the checks "
        "run on one thread) is the steadier figure. Warm = fastest of "
        f"{rounds} calls after a first one in the same process; budget {BUDGET:g} s warm.",
        "",
        "| check | module | first call (s) | visible warm wall (s) | visible warm CPU (s) | hidden warm wall (s) "
        "| hidden warm CPU (s) | verdicts (visible / hidden) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        verdicts = f"{'PASS' if r['visible_passed'] else 'FAIL'} / {'PASS' if r['hidden_passed'] else 'FAIL'}"
        over = " **over budget**" if max(r["visible_cpu"], r["hidden_cpu"]) > BUDGET else ""
        lines.append(
            f"| `{r['name']}` | `{r['module']}` | {r['first']:.2f} | {r['visible_wall']:.2f} | "
            f"{r['visible_cpu']:.2f} | {r['hidden_wall']:.2f} | {r['hidden_cpu']:.2f}{over} | {verdicts} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "checks.md")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="check names (default: all)")
    args = parser.parse_args(argv)
    names = args.only or list(MODULES)
    rows = []
    for name in names:
        rows.append(measure(name, args.rounds))
        r = rows[-1]
        print(
            f"{name}: first {r['first']:.2f} s, warm visible {r['visible_cpu']:.2f} s CPU, hidden {r['hidden_cpu']:.2f} s CPU",
            flush=True,
        )
    text = table(rows, args.rounds)
    if args.only is None:
        args.out.write_text(text)
    print(text)
    return int(any(max(r["visible_cpu"], r["hidden_cpu"]) > BUDGET for r in rows))


if __name__ == "__main__":
    sys.exit(main())
