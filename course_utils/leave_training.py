"""Leave it training (stage 6): one long run, early stopping replayed on it, and the accuracy it
would have kept against the accuracy at the end.

``watched_run`` trains with ``course_utils.train.fit`` at a constant learning rate, feeds an
``EarlyStopping(patience)`` the validation loss after every epoch (it only watches: training goes on),
and keeps the per-image correctness on the validation split after every epoch, so that the epoch early
stopping keeps and the last epoch can be compared image by image (a paired comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from torch import nn

from course_utils.data import Split
from course_utils.early_stopping import EarlyStopping
from course_utils.train import History, fit, predict


@dataclass
class WatchedRun:
    """A long run: its History, the epoch (0-based) where patience ran out (None: never), the epoch
    early stopping keeps (lowest validation loss up to then) and correctness (epochs, N)."""

    history: History
    stop_epoch: int | None
    kept_epoch: int
    correct: np.ndarray


def watched_run(
    model: nn.Module,
    train: Split,
    val: Split,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    patience: int = 3,
    seed: int = 0,
) -> WatchedRun:
    """Train ``model`` with Adam(lr) for ``epochs`` while ``EarlyStopping(patience)`` watches."""
    stopper = EarlyStopping(patience=patience)
    stop: list[int] = []
    kept: list[int] = []
    correct: list[np.ndarray] = []

    def watch(epoch: int, m: nn.Module, history: History) -> None:
        hit = predict(m, val.images).argmax(dim=1) == val.labels
        correct.append(hit.cpu().numpy().astype(np.float64))
        if stopper.step(history.val_loss[-1]) and not stop:
            stop.append(epoch)
            kept.append(stopper.best_epoch)

    history = fit(
        model,
        train,
        val,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        on_epoch_end=watch,
        seed=seed,
        progress=False,
    )
    kept_epoch = kept[0] if kept else stopper.best_epoch
    return WatchedRun(history, stop[0] if stop else None, kept_epoch, np.stack(correct))


def plot_watched_run(run: WatchedRun):  # noqa: ANN201
    """Loss (training and validation) and validation accuracy per epoch, with the epoch early
    stopping keeps and the one where its patience runs out; returns the figure."""
    h = run.history
    epochs = range(1, len(h.val_loss) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(epochs, h.val_loss, "o-", ms=3, label="validation")
    axes[0].plot(epochs, h.train_loss, "o-", ms=3, label="training")
    axes[1].plot(epochs, 100 * np.array(h.val_accuracy), "o-", ms=3)
    for ax in axes:
        ax.axvline(run.kept_epoch + 1, color="tab:red", ls="--", label="early stopping keeps")
        if run.stop_epoch is not None:
            ax.axvline(run.stop_epoch + 1, color="gray", ls=":", label="patience runs out")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].set(xlabel="epoch", ylabel="val accuracy (%)", title="accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
