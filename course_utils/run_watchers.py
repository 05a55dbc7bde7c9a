"""Watchers that ride along a ``train.fit`` run without changing it.

- ``WouldStop``: an ``on_epoch_end`` callback that feeds one validation metric (``"val_loss"``,
  lower is better, or ``"val_accuracy"``, higher is better) to an ``EarlyStopping`` and remembers the
  epoch at which it *would* have stopped and the weights of the best epoch, but lets the run go on,
  so both sides of the stopping point are visible. Two of them on one run compare two stopping rules
  at the cost of one training.
- ``LowestBatchLoss``: cross-entropy that also keeps the lowest minibatch loss of the run (a tensor,
  so no host synchronisation per step).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.early_stopping import EarlyStopping
from course_utils.train import History

METRICS = {"val_loss": "min", "val_accuracy": "max"}


class WouldStop:
    """``fit(..., on_epoch_end=watcher)``: ``stop_epoch`` (0-based, None if never) and ``best_model``."""

    def __init__(self, metric: str = "val_loss", patience: int = 5) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
        self.metric = metric
        self.stopper = EarlyStopping(patience=patience, mode=METRICS[metric])
        self.stop_epoch: int | None = None

    def __call__(self, epoch: int, model: nn.Module, history: History) -> None:
        stop = self.stopper.step(getattr(history, self.metric)[-1], model)
        if self.stop_epoch is None and stop:
            self.stop_epoch = epoch

    @property
    def best_epoch(self) -> int:
        return self.stopper.best_epoch

    def best_model(self, fresh: nn.Module) -> nn.Module:
        """``fresh`` (a model of the same architecture) with the best epoch's weights loaded."""
        return self.stopper.restore(fresh)


class LowestBatchLoss:
    """``train_loss_fn`` for ``fit``: plain cross-entropy; ``lowest`` is the lowest minibatch value."""

    def __init__(self) -> None:
        self.lowest: torch.Tensor | None = None

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, targets)
        low = loss.detach()
        self.lowest = low if self.lowest is None else torch.minimum(self.lowest, low)
        return loss
