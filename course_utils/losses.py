"""Losses the course teaches: focal loss, label smoothing, flooding and distillation.

Shared interface: every loss takes raw ``logits`` (never probabilities) and returns a tensor on
the logits' device, differentiable with respect to the logits. Class-index ``targets`` are
``int64`` of shape ``(N,)`` with values in ``[0, C)`` for ``(N, C)`` logits; binary targets are a
float tensor of 0s and 1s with the logits' shape. ``reduction`` is ``"none"`` (one value per
element or sample), ``"mean"`` or ``"sum"``. Bad arguments raise ``ValueError`` saying what was
expected and what was given.

Class indices are checked against ``[0, C)`` only for CPU tensors, where reading a value costs
nothing. On an accelerator that read would force a host synchronisation in the training loop, so
there an out-of-range index is left to PyTorch's own device-side assert; on the ``meta`` device
there are no values to check. Binary targets are never checked for being exactly 0 or 1.

Half-precision logits (float16, bfloat16) are upcast to float32 before the log-softmax or
log-sigmoid, as autocast does for ``F.cross_entropy``, so the losses come back in float32.

Oracles (used by the tests): ``torchvision.ops.sigmoid_focal_loss``,
``F.cross_entropy(label_smoothing=eps)``, ``F.kl_div(..., reduction="batchmean")``; REFERENCE.md
sections 1, 5, 6 and 11 give the formulas and papers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_float_tensor(value: object, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """float32 for half-precision logits: log-probabilities in bfloat16 keep 2-3 digits."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _check_num_classes(num_classes: object) -> None:
    is_int = isinstance(num_classes, int) and not isinstance(num_classes, bool)
    _require(is_int and num_classes >= 1, "num_classes", "an int >= 1", num_classes)


def _check_class_indices(targets: object, num_classes: int, n: int | None = None) -> None:
    """int64 of shape (N,) with values in [0, C); the values are read on CPU only (no sync)."""
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.dtype != torch.int64:
        raise ValueError(
            f"targets must be int64 class indices (torch.long), got dtype {targets.dtype}"
        )
    if targets.dim() != 1 or (n is not None and targets.shape[0] != n):
        wanted = "(N,)" if n is None else f"({n},) to match the logits"
        raise ValueError(f"targets must have shape {wanted}, got shape {tuple(targets.shape)}")
    if targets.device.type == "cpu" and targets.numel() > 0:
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"targets must be class indices in [0, {num_classes}), "
                f"got values in [{low}, {high}]"
            )


def _check_class_logits(logits: object, targets: object) -> None:
    _check_float_tensor(logits, "logits")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {tuple(logits.shape)}")
    _check_class_indices(targets, logits.shape[1], logits.shape[0])


def _check_eps(eps: object) -> None:
    _require(_is_real(eps) and 0 <= eps <= 1, "eps", "in [0, 1]", eps)


def _check_gamma(gamma: object) -> None:
    _require(_is_real(gamma) and gamma >= 0, "gamma", "a finite number >= 0", gamma)


# --- focal loss (REFERENCE.md section 1) ---------------------------------------------------------


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Binary focal loss of Lin et al. (2017), one logit per element.

    ``FL = -alpha_t * (1 - p_t)**gamma * log(p_t)`` with ``p = sigmoid(logits)``, ``p_t = p``
    where the target is 1 and ``1 - p`` where it is 0, and ``alpha_t = alpha`` for positives,
    ``1 - alpha`` for negatives. ``-log(p_t)`` is computed as BCE-with-logits and ``1 - p_t`` as
    ``sigmoid(-logits)`` for positives and ``sigmoid(logits)`` for negatives, so logits of +-100
    give finite values and there is no cancellation in ``1 - p``.

    Args:
        logits: float tensor of any shape.
        targets: float tensor of the same shape, 1 for positives and 0 for negatives.
        alpha: weight of the positives, in [0, 1]; any negative value turns the weighting off
            (torchvision's ``alpha=-1``). Default 0.25.
        gamma: focusing exponent, >= 0; ``gamma=0`` gives alpha-weighted BCE. Default 2.
        reduction: ``"none"`` (default; same shape as ``logits``), ``"mean"`` over all elements
            (not normalised by the number of positives) or ``"sum"``.

    Returns:
        The loss, reduced as asked. Matches ``torchvision.ops.sigmoid_focal_loss``.
    """
    _check_float_tensor(logits, "logits")
    if not isinstance(targets, torch.Tensor) or not targets.is_floating_point():
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a float tensor of 0s and 1s, got {got}")
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    _require(
        _is_real(alpha) and alpha <= 1, "alpha", "in [0, 1] (or negative to disable it)", alpha
    )
    _check_gamma(gamma)
    _check_reduction(reduction)

    logits = _upcast(logits)
    targets = targets.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    one_minus_p_t = targets * torch.sigmoid(-logits) + (1 - targets) * torch.sigmoid(logits)
    loss = ce * one_minus_p_t**gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return _reduce(loss, reduction)


def softmax_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: torch.Tensor | Sequence[float] | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-class focal loss: ``FL_n = -alpha[y_n] * (1 - p_n)**gamma * log(p_n)``.

    ``p_n = softmax(logits[n])[y_n]`` is the probability of the true class. ``log p_n`` comes
    from ``log_softmax`` and ``1 - p_n`` from ``-expm1(log p_n)``, which stays accurate when
    ``p_n`` is close to 1.

    Args:
        logits: float tensor of shape (N, C).
        targets: int64 tensor of shape (N,), class indices in [0, C).
        alpha: ``None`` (no class weighting, default) or per-class weights of shape (C,).
        gamma: focusing exponent, >= 0. Default 2. ``gamma=0`` with ``alpha=None`` is plain
            cross-entropy.
        reduction: ``"mean"`` (default; a plain mean over the N samples, *not* divided by the
            sum of the weights as ``F.cross_entropy(weight=...)`` does), ``"sum"`` or ``"none"``
            (shape (N,)).

    Returns:
        The loss, reduced as asked.
    """
    _check_class_logits(logits, targets)
    _check_gamma(gamma)
    _check_reduction(reduction)
    weights = None
    if alpha is not None:
        num_classes = logits.shape[1]
        weights = torch.as_tensor(alpha, device=logits.device)
        if weights.shape != (num_classes,) or not weights.is_floating_point():
            raise ValueError(
                f"alpha must be None or float per-class weights of shape ({num_classes},), "
                f"got dtype {weights.dtype} and shape {tuple(weights.shape)}"
            )

    log_p = F.log_softmax(_upcast(logits), dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
    loss = -((-torch.expm1(log_p)) ** gamma) * log_p
    if weights is not None:
        loss = loss * weights.to(loss.dtype)[targets]
    return _reduce(loss, reduction)


# --- label smoothing (REFERENCE.md section 5) ----------------------------------------------------


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    eps: float = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy against the smoothed target ``(1 - eps) * onehot(y) + eps / C``.

    Per sample: ``loss_n = (1 - eps) * (-log p[n, y_n]) + (eps / C) * sum_c (-log p[n, c])`` with
    ``log p = log_softmax(logits)``. The uniform part ``eps / C`` goes to *every* class, the true
    one included (not ``eps / (C - 1)`` to the others), as in
    ``F.cross_entropy(label_smoothing=eps)``.

    Args:
        logits: float tensor of shape (N, C).
        targets: int64 tensor of shape (N,), class indices in [0, C).
        eps: smoothing in [0, 1]; 0 gives plain cross-entropy, 1 the uniform target. Default 0.1.
        reduction: ``"mean"`` over samples (default), ``"sum"`` or ``"none"`` (shape (N,)).

    Returns:
        The loss, reduced as asked. Its minimum over logits is ``label_smoothing_floor(C, eps)``.
    """
    _check_class_logits(logits, targets)
    _check_eps(eps)
    _check_reduction(reduction)
    log_p = F.log_softmax(_upcast(logits), dim=1)
    true_class = -log_p.gather(1, targets.unsqueeze(1)).squeeze(1)
    uniform = -log_p.mean(dim=1)
    return _reduce((1 - eps) * true_class + eps * uniform, reduction)


def smoothed_targets(
    targets: torch.Tensor,
    num_classes: int,
    eps: float,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The smoothed target distribution: ``1 - eps + eps/C`` on the true class, ``eps/C`` on
    every other class; each row sums to 1.

    Args:
        targets: int64 tensor of shape (N,), class indices in [0, num_classes).
        num_classes: C, >= 1.
        eps: smoothing in [0, 1].
        dtype: floating dtype of the result; default ``torch.get_default_dtype()``.

    Returns:
        Tensor of shape (N, C) on the targets' device.
    """
    _check_num_classes(num_classes)
    _check_eps(eps)
    _check_class_indices(targets, num_classes)
    off = eps / num_classes
    smoothed = torch.full(
        (targets.shape[0], num_classes),
        off,
        dtype=dtype or torch.get_default_dtype(),
        device=targets.device,
    )
    return smoothed.scatter(1, targets.unsqueeze(1), 1 - eps + off)


def label_smoothing_floor(num_classes: int, eps: float) -> float:
    """Lowest reachable label-smoothed cross-entropy: the entropy of the smoothed target (nats).

    ``H = -(1 - eps + eps/C) ln(1 - eps + eps/C) - (C - 1) (eps/C) ln(eps/C)``, with
    ``0 ln 0 = 0``. For C = 10 and eps = 0.1 it is about 0.500; eps = 0 gives 0 and eps = 1 gives
    ln C. Training loss cannot go below it, so a flood level must sit above it.
    """
    _check_num_classes(num_classes)
    _check_eps(eps)
    off = eps / num_classes
    on = 1 - eps + off

    def plogp(p: float) -> float:
        return p * math.log(p) if p > 0 else 0.0

    return -(plogp(on) + (num_classes - 1) * plogp(off))


# --- flooding (REFERENCE.md section 6) -----------------------------------------------------------


def flooded(loss: torch.Tensor, flood_level: float) -> torch.Tensor:
    """Flooding of Ishida et al. (2020): ``|loss - b| + b`` with flood level ``b``.

    Above ``b`` this is the loss itself; below ``b`` it is ``2b - loss``, so its gradient is the
    *negative* of the loss's gradient and the optimiser climbs back up to ``b``. It is not a
    clamp: ``max(loss, b)`` has zero gradient below ``b``. Apply it to the minibatch-mean loss;
    on a tensor of per-sample losses it acts elementwise (the iFlood variant).

    Args:
        loss: float tensor, usually 0-dim.
        flood_level: b, a finite number >= 0.

    Returns:
        Tensor of the loss's shape.
    """
    _check_float_tensor(loss, "loss")
    _require(
        _is_real(flood_level) and flood_level >= 0,
        "flood_level",
        "a finite number >= 0",
        flood_level,
    )
    return (loss - flood_level).abs() + flood_level


# --- knowledge distillation (REFERENCE.md section 11) --------------------------------------------


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    temperature: float = 2.0,
    soft_weight: float = 0.5,
) -> torch.Tensor:
    """Distillation loss of Hinton et al. (2015).

    Soft term: ``T**2 * KL(softmax(teacher/T) || softmax(student/T))``, summed over classes and
    averaged over the batch (``reduction="batchmean"``). ``T**2`` keeps its gradients on the
    scale of the hard term. With ``targets`` the loss is
    ``soft_weight * soft + (1 - soft_weight) * F.cross_entropy(student_logits, targets)`` (the
    hard term at T = 1); without, the soft term alone.

    The teacher's logits are used as given: compute them under ``torch.no_grad()`` so no gradient
    reaches the teacher.

    Args:
        student_logits: float tensor of shape (N, C).
        teacher_logits: float tensor of shape (N, C).
        targets: ``None`` (default) or int64 class indices of shape (N,).
        temperature: T > 0. Default 2.
        soft_weight: weight of the soft term in [0, 1], used only with ``targets``. Default 0.5.

    Returns:
        0-dim tensor.
    """
    _check_float_tensor(student_logits, "student_logits")
    _check_float_tensor(teacher_logits, "teacher_logits")
    if student_logits.dim() != 2 or teacher_logits.shape != student_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must both have shape (N, C), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    _require(
        _is_real(temperature) and temperature > 0,
        "temperature",
        "a finite number > 0",
        temperature,
    )
    _require(
        _is_real(soft_weight) and 0 <= soft_weight <= 1, "soft_weight", "in [0, 1]", soft_weight
    )
    if targets is not None:
        _check_class_logits(student_logits, targets)

    log_q_student = F.log_softmax(_upcast(student_logits) / temperature, dim=1)
    log_p_teacher = F.log_softmax(_upcast(teacher_logits) / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_q_student)).sum(dim=1).mean()
    soft = temperature**2 * kl
    if targets is None:
        return soft
    hard = F.cross_entropy(student_logits, targets)
    return soft_weight * soft + (1 - soft_weight) * hard
