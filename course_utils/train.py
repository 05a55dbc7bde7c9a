"""A plain, readable training loop: ``fit`` trains, ``evaluate`` scores a whole split.

Shared interface: models map a batch of images (B, C, H, W) to logits (B, K) (or (B,) / (B, 1) for a
single-logit binary or regression model); ``loss_fn(outputs, targets)`` returns the minibatch-mean loss.
Data are ``Split``-like objects with ``.images`` and ``.labels`` tensors already on the model's device
(small datasets live on the device; no DataLoader workers). Accuracy is computed for integer labels only.

``fit`` returns a ``History`` with one entry per epoch: training loss (mean over the epoch's batches),
validation loss and accuracy over the whole validation split, and the learning rate. It shows a tqdm
progress bar (switched off under nbgrader, where stderr output costs points).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.progress import progress_bar
from course_utils.runtime import grading

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SplitLike(Protocol):
    images: torch.Tensor
    labels: torch.Tensor


@dataclass
class History:
    """Per-epoch numbers of one ``fit`` run (lists of equal length) and the final model's scores."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def best(self, metric: str = "val_loss") -> tuple[int, float]:
        """(epoch, value) of the best value of ``metric`` (min for losses, max for accuracies)."""
        values = getattr(self, metric)
        if not values:
            raise ValueError(f"no {metric} recorded")
        pick = min if "loss" in metric else max
        epoch = pick(range(len(values)), key=values.__getitem__)
        return epoch, values[epoch]

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "batch_loss"}


def _is_classification(labels: torch.Tensor) -> bool:
    return not labels.dtype.is_floating_point


def _flatten_binary(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if outputs.ndim == 2 and outputs.shape[1] == 1 and targets.ndim == 1:
        return outputs.squeeze(1)
    return outputs


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Model outputs for all ``images`` in eval mode, batched; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    outputs = torch.cat(
        [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    model.train(was_training)
    return outputs


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: SplitLike,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Loss and (for integer labels) accuracy over the *whole* split: ``{"loss": .., "accuracy": ..}``."""
    outputs = _flatten_binary(predict(model, split.images, batch_size), split.labels)
    result = {"loss": float(loss_fn(outputs, split.labels))}
    if _is_classification(split.labels):
        result["accuracy"] = float((outputs.argmax(dim=1) == split.labels).float().mean())
    return result


def fit(
    model: nn.Module,
    train: SplitLike,
    val: SplitLike | None = None,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 3e-4,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scheduler_per_batch: bool = False,
    loss_fn: LossFn = F.cross_entropy,
    train_loss_fn: LossFn | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    early_stopping: Any = None,
    on_epoch_end: Callable[[int, nn.Module, History], None] | None = None,
    seed: int | None = 0,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train``, evaluating on ``val`` after each.

    - optimizer: default ``Adam(model.parameters(), lr)`` (Karpathy's safe default is lr 3e-4).
    - scheduler: any torch LR scheduler, stepped per epoch, or per batch if ``scheduler_per_batch``.
    - train_loss_fn: the loss that is optimised (e.g. a flooded or label-smoothed loss); ``loss_fn`` is
      what is reported on the validation split (default: the same as training if not given).
    - transform: applied to each training batch (augmentation); never to validation data.
    - early_stopping: an object with ``step(val_loss, model) -> bool`` (see ``course_utils.early_stopping``).
    - seed: shuffling order comes from a generator seeded with ``seed`` (None: the global RNG).
    Returns the ``History``. Training loss is the mean minibatch loss of the epoch (as optimised).
    """
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    train_loss_fn = train_loss_fn or loss_fn
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    history = History()
    n = len(train.labels)
    classify = _is_classification(train.labels)
    show = progress and not grading()
    bar = progress_bar(range(epochs), desc=desc, show=show)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(train.labels.device)
        total_loss = torch.zeros((), device=train.labels.device)
        correct = torch.zeros((), device=train.labels.device)
        batches = 0
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            x, y = train.images[index], train.labels[index]
            if transform is not None:
                x = transform(x)
            outputs = _flatten_binary(model(x), y)
            loss = train_loss_fn(outputs, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_per_batch:
                scheduler.step()
            total_loss += loss.detach()
            batches += 1
            if classify:
                correct += (outputs.detach().argmax(dim=1) == y).sum()
        history.batch_loss.append(float(loss.detach()))
        history.train_loss.append(float(total_loss) / batches)
        if classify:
            history.train_accuracy.append(float(correct) / n)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        if val is not None:
            scores = evaluate(model, val, loss_fn)
            history.val_loss.append(scores["loss"])
            if "accuracy" in scores:
                history.val_accuracy.append(scores["accuracy"])
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", val=f"{scores['loss']:.3f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, history)
        if (
            early_stopping is not None
            and val is not None
            and early_stopping.step(history.val_loss[-1], model)
        ):
            history.stopped_epoch = epoch
            break
    return history
