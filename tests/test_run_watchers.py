"""course_utils.run_watchers: a watcher records where early stopping would stop, and the best weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.run_watchers import LowestBatchLoss, WouldStop
from course_utils.train import History


def _feed(watcher: WouldStop, values: list[float]) -> nn.Linear:
    model, history = nn.Linear(1, 1), History()
    for epoch, v in enumerate(values):
        getattr(history, watcher.metric).append(v)
        with torch.no_grad():
            model.weight.fill_(epoch)  # the weights remember the epoch
        watcher(epoch, model, history)
    return model


def test_loss_watcher_stops_after_patience_and_keeps_the_best_weights() -> None:
    watcher = WouldStop("val_loss", patience=2)
    _feed(watcher, [1.0, 0.5, 0.7, 0.8, 0.1, 0.9])
    assert watcher.stop_epoch == 3  # two epochs without beating 0.5; the later 0.1 does not undo it
    assert watcher.best_epoch == 4  # but the best weights keep being tracked
    assert float(watcher.best_model(nn.Linear(1, 1)).weight.detach()) == 4.0


def test_accuracy_watcher_maximises() -> None:
    watcher = WouldStop("val_accuracy", patience=3)
    _feed(watcher, [0.5, 0.9, 0.8, 0.85, 0.7])
    assert watcher.best_epoch == 1 and watcher.stop_epoch == 4
    with pytest.raises(ValueError):
        WouldStop("train_loss")


def test_lowest_batch_loss_is_the_minimum_of_the_cross_entropies() -> None:
    watch = LowestBatchLoss()
    g = torch.Generator().manual_seed(0)
    seen = []
    for _ in range(5):
        z, y = torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
        seen.append(float(watch(z, y)))
        assert float(watch.lowest) == pytest.approx(min(seen))
    assert float(F.cross_entropy(z, y)) == pytest.approx(seen[-1])
