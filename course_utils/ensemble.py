"""Ensembles: average the members' predicted probabilities; snapshot ensembles from cosine restarts.

Shared interface: an ensemble of M classifiers predicts, for a batch of N inputs and C classes, the
mean of the members' softmax probabilities, p(c | x) = (1/M) sum_m softmax(z_m)(c), a tensor (N, C)
on the logits' device and dtype. Averaging probabilities (not logits, not votes) is what the papers
below do.

Sources: Karpathy's recipe, stage 6 ("ensembles ... a pretty much guaranteed way to gain 2%"); Huang
et al., *Snapshot Ensembles: Train 1, get M for free*, arXiv:1704.00109 (one snapshot at the end of
each cosine cycle, average the softmax outputs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from course_utils.schedules import cycle_boundaries


def average_probabilities(logits: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Mean over models of softmax(logits) along the class dimension.

    Args:
        logits: M tensors of shape (N, C) (a list or tuple), or one stacked tensor (M, N, C).

    Returns:
        Probabilities (N, C): each row sums to 1.
    """
    if isinstance(logits, torch.Tensor):
        stacked = logits
    else:
        members = list(logits)
        if not members:
            raise ValueError("need the logits of at least one model, got an empty list")
        shapes = {tuple(z.shape) for z in members}
        if len(shapes) != 1:
            raise ValueError(
                f"all logits must have the same shape (N, C), got shapes {sorted(shapes)}"
            )
        stacked = torch.stack(members)
    if stacked.dim() != 3 or stacked.shape[0] == 0:
        raise ValueError(
            "logits must be M >= 1 tensors of shape (N, C) or one tensor (M, N, C), got shape "
            f"{tuple(stacked.shape)} after stacking"
        )
    return stacked.softmax(dim=-1).mean(dim=0)


def ensemble_predict(models: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Averaged probabilities (N, C) of ``models`` on the batch ``x``.

    Each model runs in eval mode without gradients; its previous train/eval mode is restored.
    """
    logits = []
    for model in models:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits.append(model(x))
        finally:
            model.train(was_training)
    return average_probabilities(logits)


class SnapshotCollector:
    """Saves a copy of the model's weights at the end of each cosine-restart cycle.

    Call ``maybe_snapshot(step, model)`` after every optimizer step with ``step`` = the number of
    optimizer steps taken so far (1 after the first). When ``step`` is a cycle boundary (see
    ``course_utils.schedules.cycle_boundaries``) it appends ``copy.deepcopy(model.state_dict())`` to
    ``states`` (on the model's device) and returns True. Rebuild the members with
    ``snapshot_models(model_factory, collector.states)``.

    Example::

        collector = SnapshotCollector.for_schedule(total_steps, T_0=iters_per_cycle)
        for step in range(total_steps):
            ...; optimizer.step(); collector.maybe_snapshot(step + 1, model)
    """

    def __init__(self, boundaries: Iterable[int]) -> None:
        self.boundaries = sorted(set(boundaries))
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.boundaries):
            raise ValueError(f"boundaries must be positive integers, got {self.boundaries}")
        self._pending = set(self.boundaries)
        self.states: list[dict[str, Any]] = []
        self.steps: list[int] = []

    @classmethod
    def for_schedule(cls, total_steps: int, T_0: int, T_mult: int = 1) -> SnapshotCollector:
        """A collector for the cycle ends of ``CosineAnnealingWarmRestarts(T_0, T_mult)``."""
        return cls(cycle_boundaries(total_steps, T_0, T_mult))

    def maybe_snapshot(self, step: int, model: nn.Module) -> bool:
        """Save the weights if ``step`` ends a cycle (once per boundary); True when saved."""
        if step not in self._pending:
            return False
        self._pending.discard(step)
        self.states.append(copy.deepcopy(model.state_dict()))
        self.steps.append(step)
        return True


def snapshot_models(
    model_factory: Callable[[], nn.Module], states: Iterable[dict[str, Any]]
) -> list[nn.Module]:
    """One model per saved state: ``model_factory()`` loaded with the state, in eval mode."""
    models = []
    for state in states:
        model = model_factory()
        model.load_state_dict(state)
        models.append(model.eval())
    return models
