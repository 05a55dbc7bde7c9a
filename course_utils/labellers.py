"""Simulated labellers: a stand-in for the recipe's human baseline when no human is at hand.

Karpathy's recipe: evaluate your own (human) accuracy, or annotate the test data twice and score one
annotation against the other. A notebook cannot label images by hand, so a *labeller* here is a
1-nearest-neighbour matcher on raw pixels: it labels each query image with the label of the closest
image (Euclidean distance) it has "seen". Two labellers that have seen disjoint halves of the training
images make two independent annotations of the same test images (``annotate_twice``).

Also here: the published human accuracies the course quotes, and ``parse_labels`` for a learner's own
typed labels.
"""

from __future__ import annotations

import torch

#: dataset -> (who, accuracy): Fashion-MNIST README (crowd workers, majority of three votes, 1,000
#: images); Karpathy, "Lessons learned from manually classifying CIFAR-10" (2011, 400 images).
PUBLISHED_HUMAN_ACCURACY: dict[str, tuple[str, float]] = {
    "fashion_mnist": ("crowd workers, Fashion-MNIST README", 0.835),
    "cifar10": ("Karpathy (2011), 400 images", 0.94),
}


def nearest_neighbour_labels(
    queries: torch.Tensor,
    memory_images: torch.Tensor,
    memory_labels: torch.Tensor,
    chunk: int = 1000,
) -> torch.Tensor:
    """The label of each query's nearest memory image (Euclidean on flattened pixels), shape (Nq,).

    ``queries`` (Nq, ...) and ``memory_images`` (Nm, ...) with the same per-image shape;
    ``memory_labels`` (Nm,). Distances are computed ``chunk`` queries at a time (memory Nm x chunk).
    Ties go to the lowest memory index.
    """
    if queries.shape[1:] != memory_images.shape[1:]:
        raise ValueError(
            f"queries and memory images differ in shape: {tuple(queries.shape[1:])} vs "
            f"{tuple(memory_images.shape[1:])}"
        )
    if len(memory_images) != len(memory_labels) or len(memory_images) == 0:
        raise ValueError(
            f"need one label per memory image (and at least one), got {len(memory_images)} images "
            f"and {len(memory_labels)} labels"
        )
    memory = memory_images.flatten(1)
    found = [
        memory_labels[torch.cdist(queries[i : i + chunk].flatten(1), memory).argmin(dim=1)]
        for i in range(0, len(queries), chunk)
    ]
    return torch.cat(found) if found else memory_labels.new_zeros(0)


def annotate_twice(
    queries: torch.Tensor, memory_images: torch.Tensor, memory_labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent annotations of ``queries``: labeller A remembers the first half of the memory,
    labeller B the second half. Returns ``(labels_a, labels_b)``, each shape (Nq,)."""
    half = len(memory_images) // 2
    if half == 0:
        raise ValueError("need at least two memory images to make two labellers")
    labels_a = nearest_neighbour_labels(queries, memory_images[:half], memory_labels[:half])
    labels_b = nearest_neighbour_labels(queries, memory_images[half:], memory_labels[half:])
    return labels_a, labels_b


def published_human_accuracy(dataset: str) -> str:
    """One line quoting the published human accuracy for ``dataset``, or saying there is none."""
    if dataset not in PUBLISHED_HUMAN_ACCURACY:
        return f"no published human accuracy for {dataset} in the course's sources"
    who, accuracy = PUBLISHED_HUMAN_ACCURACY[dataset]
    return f"published human accuracy on {dataset} ({who}): {100 * accuracy:.1f}%"


def parse_labels(text: str, count: int) -> torch.Tensor | None:
    """``count`` class indices typed as ``"7 2 1 0 ..."`` (commas allowed), or None if ``text`` is not
    exactly ``count`` non-negative integers."""
    tokens = text.replace(",", " ").split()
    if len(tokens) != count or not all(t.isdigit() for t in tokens):
        return None
    return torch.tensor([int(t) for t in tokens])
