"""One classic bug per stage, planted in a copy of the solution to test partial credit end to end.

``answer``: the grade_id of the answer cell replaced by ``source``; ``test``: the grade_id of the test
cell that must then fail (and only it). The checks' own unit tests cover every other classic bug.
"""

PLANTED_BUGS: dict[str, dict[str, str]] = {
    # Ranking by the given label's probability, but most probable first: the suspects end up last.
    "01_data": {
        "answer": "rank_label_errors",
        "test": "rank_label_errors_test",
        "source": (
            "def rank_label_errors(logits, labels):\n"
            '    """All indices, the most suspicious label first."""\n'
            "    p_given = torch.softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)\n"
            "    return torch.argsort(p_given, descending=True)\n"
        ),
    },
    # Forgets optimizer.zero_grad(): gradients accumulate over the steps.
    "02_baselines": {
        "answer": "overfit_one_batch",
        "test": "overfit_one_batch_test",
        "source": 'def overfit_one_batch(\n    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int\n) -> list[float]:\n    """Train ``model`` in place on one batch with Adam and cross-entropy; return the step losses."""\n    model.train()\n    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)\n    history = []\n    for _ in range(steps):\n        loss = F.cross_entropy(model(x), y)\n        loss.backward()\n        optimizer.step()\n        history.append(loss.item())\n    return history',
    },
}
