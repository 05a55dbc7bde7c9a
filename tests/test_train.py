from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.train import History, evaluate, fit, predict


def _toy(n: int = 256, seed: int = 0) -> Split:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    y = (x.flatten(1).sum(1) > 0).long()
    return Split(x, y)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))


def test_fit_lowers_the_training_loss_and_records_every_epoch() -> None:
    train, val = _toy(), _toy(seed=1)
    history = fit(_model(), train, val, epochs=8, lr=1e-2, progress=False)
    assert history.epochs == 8 and len(history.val_accuracy) == 8 and len(history.lr) == 8
    assert history.train_loss[-1] < history.train_loss[0] / 2
    assert history.val_accuracy[-1] > 0.85


def test_fit_is_repeatable_with_a_seed() -> None:
    runs = [fit(_model(), _toy(), epochs=2, lr=1e-2, progress=False, seed=5) for _ in range(2)]
    assert runs[0].train_loss == runs[1].train_loss


def test_evaluate_scores_the_whole_split() -> None:
    split = _toy(n=2500)
    model = _model()
    scores = evaluate(model, split, batch_size=1000)
    with torch.no_grad():
        logits = model(split.images)
    assert scores["loss"] == pytest.approx(float(F.cross_entropy(logits, split.labels)), rel=1e-5)
    expected = float((logits.argmax(1) == split.labels).float().mean())
    assert scores["accuracy"] == pytest.approx(expected)


def test_predict_restores_training_mode() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2)).train()
    out1, out2 = predict(model, _toy().images), predict(model, _toy().images)
    assert torch.equal(out1, out2) and model.training


def test_fit_handles_single_logit_regression_targets() -> None:
    split = _toy()
    target = Split(split.images, split.images.flatten(1).sum(1) + 50.0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    history = fit(model, target, target, epochs=3, lr=0.1, loss_fn=F.mse_loss, progress=False)
    assert history.train_accuracy == [] and history.val_loss[-1] < history.val_loss[0]


def test_early_stopping_object_stops_the_loop() -> None:
    class StopAtTwo:
        calls = 0

        def step(self, value: float, model: nn.Module) -> bool:
            self.calls += 1
            return self.calls == 2

    history = fit(
        _model(), _toy(), _toy(seed=2), epochs=10, early_stopping=StopAtTwo(), progress=False
    )
    assert history.epochs == 2 and history.stopped_epoch == 1


def test_history_best_picks_min_loss_and_max_accuracy() -> None:
    h = History(val_loss=[0.5, 0.3, 0.4], val_accuracy=[0.8, 0.9, 0.85])
    assert h.best("val_loss") == (1, 0.3) and h.best("val_accuracy") == (1, 0.9)


def test_fit_writes_nothing_to_stderr_under_grading(capfd, monkeypatch) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    fit(_model(), _toy(), _toy(seed=1), epochs=2)
    assert capfd.readouterr().err == ""
