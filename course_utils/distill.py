"""Distillation experiments of stage 6: a student trained on hard labels, or on a teacher's soft
targets as well (Hinton, Vinyals and Dean 2015, https://arxiv.org/abs/1503.02531).

The student's loss on a batch, with the teacher's logits ``t`` for the same images::

    L = w * soft(s, t, T) + (1 - w) * CE(y, softmax(s))        soft: T^2 KL(softmax(t/T) || softmax(s/T))

``soft`` is passed in (the notebook's exercise, or ``course_utils.losses.distillation_loss``).
``student_arms`` trains the same student from the same seeds with ``w = 0`` (hard labels only) and
with the soft term, and returns the per-example correctness of each on a held-out split, for a
comparison paired by seed and by image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.runtime import seed_everything
from course_utils.train import predict

SoftLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def train_student(
    make: Callable[[], nn.Module],
    split: Split,
    *,
    epochs: int,
    teacher_logits: torch.Tensor | None = None,
    soft_loss: SoftLoss | None = None,
    temperature: float = 4.0,
    soft_weight: float = 0.9,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """``make()`` seeded with ``seed``, trained by Adam(lr) on shuffled batches of ``split``; with
    ``teacher_logits`` (N, C, aligned with ``split``) the loss adds ``soft_loss`` with weight
    ``soft_weight`` (the hard term gets 1 - soft_weight). Returns the model in eval mode."""
    if teacher_logits is not None and soft_loss is None:
        raise ValueError("teacher_logits need a soft_loss(student, teacher, temperature)")
    seed_everything(seed)
    student = make().to(split.images.device)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(split), generator=generator).to(split.labels.device)
        for start in range(0, len(split), batch_size):
            index = order[start : start + batch_size]
            outputs = student(split.images[index])
            loss = F.cross_entropy(outputs, split.labels[index])
            if teacher_logits is not None:
                soft = soft_loss(outputs, teacher_logits[index], temperature)
                loss = soft_weight * soft + (1 - soft_weight) * loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return student.eval()


def student_arms(
    make: Callable[[], nn.Module],
    split: Split,
    teacher_logits: torch.Tensor,
    held_out: Split,
    *,
    seeds: Sequence[int],
    soft_loss: SoftLoss,
    **train_kwargs: float,
) -> dict[str, np.ndarray]:
    """Correctness on ``held_out`` (seeds, N) of the student trained on hard labels ("hard") and
    distilled ("distilled"), the same seeds for both."""
    arms: dict[str, list[np.ndarray]] = {"hard": [], "distilled": []}
    for seed in seeds:
        for arm, teacher in (("hard", None), ("distilled", teacher_logits)):
            model = train_student(
                make, split, teacher_logits=teacher, soft_loss=soft_loss, seed=seed, **train_kwargs
            )
            hit = predict(model, held_out.images).argmax(dim=1) == held_out.labels
            arms[arm].append(hit.cpu().numpy().astype(np.float64))
    return {arm: np.stack(rows) for arm, rows in arms.items()}
