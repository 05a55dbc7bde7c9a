"""course_utils.labellers: 1-NN labellers against scikit-learn's, and the helpers around them."""

from __future__ import annotations

import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from course_utils.labellers import (
    annotate_twice,
    nearest_neighbour_labels,
    parse_labels,
    published_human_accuracy,
)


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_nearest_neighbour_labels_match_sklearn_in_every_chunking() -> None:
    memory, labels = _data(60, 0)
    queries, _ = _data(25, 1)
    oracle = KNeighborsClassifier(n_neighbors=1).fit(memory.flatten(1).numpy(), labels.numpy())
    expected = torch.as_tensor(oracle.predict(queries.flatten(1).numpy()))
    for chunk in (1, 7, 1000):
        assert torch.equal(nearest_neighbour_labels(queries, memory, labels, chunk=chunk), expected)


def test_a_labeller_that_remembers_the_queries_is_always_right() -> None:
    memory, labels = _data(30, 2)
    assert torch.equal(nearest_neighbour_labels(memory, memory, labels), labels)


def test_annotate_twice_uses_disjoint_halves() -> None:
    memory, labels = _data(40, 3)
    queries, _ = _data(10, 4)
    a, b = annotate_twice(queries, memory, labels)
    assert torch.equal(a, nearest_neighbour_labels(queries, memory[:20], labels[:20]))
    assert torch.equal(b, nearest_neighbour_labels(queries, memory[20:], labels[20:]))


def test_mismatched_inputs_are_refused() -> None:
    memory, labels = _data(10, 5)
    with pytest.raises(ValueError, match="shape"):
        nearest_neighbour_labels(torch.rand(3, 1, 5, 5), memory, labels)
    with pytest.raises(ValueError, match="one label per memory image"):
        nearest_neighbour_labels(memory, memory, labels[:5])
    with pytest.raises(ValueError, match="two memory images"):
        annotate_twice(memory, memory[:1], labels[:1])


def test_parse_labels_accepts_exactly_count_integers() -> None:
    assert parse_labels("7 2, 1", 3).tolist() == [7, 2, 1]
    assert parse_labels("", 3) is None
    assert parse_labels("7 2", 3) is None
    assert parse_labels("7 two 1", 3) is None


def test_published_human_accuracy_quotes_known_datasets_only() -> None:
    assert "83.5%" in published_human_accuracy("fashion_mnist")
    assert published_human_accuracy("mnist_5k").startswith("no published")
