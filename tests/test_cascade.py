"""Cascades: confident images answered by the cheap model, the rest by the ensemble; cost in passes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils import cascade  # noqa: E402
from course_utils.ensemble import average_probabilities  # noqa: E402


def _probs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cheap = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.3, 0.7], [0.99, 0.01]])
    ensemble = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 1, 0])
    return cheap, ensemble, labels


def test_cascade_takes_the_cheap_answer_when_confident() -> None:
    cheap, ensemble, _ = _probs()
    probs, deferred = cascade.cascade_probs(cheap, ensemble, 0.9)
    assert deferred.tolist() == [False, True, True, False]
    assert torch.equal(probs[0], cheap[0]) and torch.equal(probs[1], ensemble[1])
    with pytest.raises(ValueError, match="N, C"):
        cascade.cascade_probs(cheap, ensemble[:2], 0.5)


def test_curve_runs_from_the_cheap_model_to_the_ensemble() -> None:
    cheap, ensemble, labels = _probs()
    points = cascade.cascade_curve(cheap, ensemble, labels, [0.0, 0.9, 1.01], extra_cost=4)
    assert [p.deferred for p in points] == [0.0, 0.5, 1.0]
    assert [p.cost for p in points] == [1.0, 3.0, 5.0]
    assert points[0].accuracy == 0.75  # the cheap model alone misses image 1
    assert points[-1].accuracy == 0.75  # the ensemble alone misses image 3
    assert points[1].accuracy == 1.0  # each answers where it is right
    assert cascade.cheapest_within(points, target=0.75, tolerance=0.0) == points[0]
    assert cascade.cheapest_within(points, target=1.0, tolerance=0.0) == points[1]
    with pytest.raises(ValueError, match="no threshold"):
        cascade.cheapest_within(points, target=1.5, tolerance=0.0)
    assert cascade.as_rows(points)[1] == {
        "threshold": 0.9,
        "accuracy": 1.0,
        "deferred": 0.5,
        "cost": 3.0,
    }
    assert cascade.plot_cascade(points, 5.0, points[1]) is not None


def test_cascade_predict_runs_the_rest_only_on_deferred_images() -> None:
    torch.manual_seed(0)
    models = [nn.Linear(6, 3) for _ in range(3)]
    x = torch.randn(50, 6)
    seen = []
    models[1].register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    probs, deferred = cascade.cascade_predict(models[0], models[1:], x, 0.6)
    with torch.no_grad():
        logits = [m(x) for m in models]
    full = average_probabilities(logits)
    expected, mask = cascade.cascade_probs(torch.softmax(logits[0], 1), full, 0.6)
    assert torch.equal(deferred, mask) and 0 < int(deferred.sum()) < 50
    assert torch.allclose(probs, expected, atol=1e-6)
    assert seen[0] == int(deferred.sum())  # the rest saw only the deferred images
