"""Early stopping: stop training when the validation metric has stopped improving.

Shared convention (the same as Keras and PyTorch Lightning): an epoch *improves* when its value
beats the best value so far by more than ``min_delta`` (lower for ``mode="min"``, higher for
``"max"``); the best value is updated only on improvements. Training stops once ``patience``
consecutive epochs have not improved. Epochs are the 0-based indices of the values seen, in order;
the first value always improves (the best starts at +inf for "min", -inf for "max").

Sources: Goodfellow, Bengio & Courville, *Deep Learning*, section 7.8 (early stopping, and the two
ways to retrain on all the data afterwards); Karpathy's recipe, stage 4.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from torch import nn

_MODES = ("min", "max")


def _check_args(patience: int, min_delta: float, mode: str) -> None:
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
    if not min_delta >= 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def _improves(value: float, best: float, min_delta: float, mode: str) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping:
    """Tracks a validation metric epoch by epoch and says when to stop (see the module docstring).

    Usage::

        stopper = EarlyStopping(patience=5)
        for epoch in range(max_epochs):
            train_one_epoch(...)
            if stopper.step(val_loss, model):
                break
        stopper.restore(model)  # back to the weights of the best epoch

    Attributes:
        best: the best value so far (``inf``/``-inf`` before the first step).
        best_epoch: the 0-based index of the step that set ``best`` (-1 before the first step).
        best_state: ``copy.deepcopy(model.state_dict())`` at ``best_epoch`` if a model was passed.
        epochs_without_improvement: consecutive non-improving steps since ``best_epoch``.
        epoch: the index of the last step (-1 before the first).
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min") -> None:
        _check_args(patience, min_delta, mode)
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, Any] | None = None
        self.epochs_without_improvement = 0
        self.epoch = -1

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record this epoch's ``value``; True when training should stop.

        On an improvement, ``best``/``best_epoch`` are updated and, if ``model`` is given, its
        state_dict is deep-copied into ``best_state``. A NaN value never improves.
        """
        value = float(value)
        self.epoch += 1
        if _improves(value, self.best, self.min_delta, self.mode):
            self.best = value
            self.best_epoch = self.epoch
            self.epochs_without_improvement = 0
            if model is not None:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience

    @property
    def should_stop(self) -> bool:
        """Whether the last ``step`` asked to stop."""
        return self.epochs_without_improvement >= self.patience

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights into ``model`` and return it."""
        if self.best_state is None:
            raise RuntimeError(
                "no weights were saved: pass the model to step(value, model) to keep the best state"
            )
        model.load_state_dict(self.best_state)
        return model


def should_stop(val_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    """Whether to stop after epochs whose validation losses are ``val_losses`` (lower is better).

    Replays the convention of the module docstring: walking through the losses with best = +inf and
    a counter at 0, a loss below ``best - min_delta`` sets best to it and resets the counter; any
    other loss adds one to the counter. Returns ``counter >= patience`` at the end, so an empty
    history never stops. Equals the last return value of ``EarlyStopping(patience, min_delta).step``
    fed the same losses.

    Example: ``should_stop([1.0, 0.8, 0.85, 0.9], patience=2)`` is True (two epochs since 0.8).
    """
    _check_args(patience, min_delta, "min")
    best, waited = math.inf, 0
    for loss in val_losses:
        if loss < best - min_delta:
            best, waited = loss, 0
        else:
            waited += 1
    return waited >= patience
