"""Class-balanced subsets of a split, and the split of a dataset's classes into two tasks.

The stored splits are sorted by class, so "the first n" is never a sample: ``stratified_index``
draws ``per_class`` examples of every class with a seeded generator and shuffles them together.
"""

from __future__ import annotations

import torch

from course_utils.data import Split


def stratified_index(split: Split, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices (on the labels' device) of ``per_class`` random examples of every class present (all of
    a class that has fewer), in random order; the same ``seed`` gives the same indices."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    generator = torch.Generator().manual_seed(seed)
    labels = split.labels.cpu()
    chosen = []
    for c in labels.unique():
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    index = torch.cat(chosen)
    return index[torch.randperm(len(index), generator=generator)].to(split.labels.device)


def stratified(split: Split, per_class: int, seed: int = 0) -> Split:
    """``split.subset(stratified_index(split, per_class, seed))``."""
    return split.subset(stratified_index(split, per_class, seed))


def class_range(split: Split, low: int, high: int) -> Split:
    """The examples of classes ``low .. high - 1``, relabelled ``0 .. high - low - 1``."""
    keep = (split.labels >= low) & (split.labels < high)
    return Split(split.images[keep], split.labels[keep] - low)


def joined(*splits: Split) -> Split:
    """One split holding the examples of all ``splits`` in order (e.g. train + validation)."""
    return Split(torch.cat([s.images for s in splits]), torch.cat([s.labels for s in splits]))
