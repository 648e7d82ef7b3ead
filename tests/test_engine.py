"""The engine's loop: train and evaluation modes, gradients off in evaluation, learning."""
from __future__ import annotations

import torch
from torch import nn

from cnnlab.data.memory import TensorBatches
from cnnlab.engine.loop import evaluate, fit, train_one_epoch
from cnnlab.tasks.classify import Classify


def _toy_problem(n=256, seed=0):
    """Two classes told apart by the sign of the first feature."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(16, 2))


def test_evaluate_uses_eval_mode_without_gradients_and_restores_the_mode():
    model, seen = _model(), []
    model[3].register_forward_hook(
        lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    x, y = _toy_problem()
    model.train()
    first = evaluate(model, TensorBatches(x, y, 32), Classify())
    second = evaluate(model, TensorBatches(x, y, 32), Classify())
    assert set(seen) == {(False, False)}
    assert torch.equal(first.probabilities, second.probabilities)  # dropout is off
    assert model.training


def test_training_updates_batch_norm_statistics_and_evaluation_does_not():
    model = _model()
    x, y = _toy_problem()
    before = model[1].running_mean.clone()
    evaluate(model, TensorBatches(x, y, 32), Classify())
    assert torch.equal(model[1].running_mean, before)
    train_one_epoch(model, TensorBatches(x, y, 32), Classify(),
                    torch.optim.SGD(model.parameters(), lr=0.1))
    assert not torch.equal(model[1].running_mean, before)


def test_fit_learns_a_separable_problem_and_reports_every_epoch():
    model = _model()
    x, y = _toy_problem()
    history = fit(model, TensorBatches(x, y, 32, shuffle=True), TensorBatches(*_toy_problem(seed=1), 64),
                  epochs=5, task=Classify(), optimizer=torch.optim.Adam(model.parameters(), lr=0.01))
    assert [m["epoch"] for m in history] == [1, 2, 3, 4, 5]
    assert history[-1]["val_accuracy"] > 0.9
    assert history[-1]["train_loss"] < history[0]["train_loss"]
