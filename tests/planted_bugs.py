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
    # Ignores T_mult: every cycle has length T_0.
    "05_tune": {
        "answer": "cosine_restart_lr",
        "test": "cosine_restart_lr_test",
        "source": 'def cosine_restart_lr(\n    step: float, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0\n) -> float:\n    """SGDR\'s learning rate at optimizer step ``step`` (cycles T_0, T_0*T_mult, ...)."""\n    t_cur = step % T_0  # position in the cycle\n    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / T_0)) / 2',
    },
    # Averages the logits, then applies softmax (not the mean of probabilities).
    "06_squeeze": {
        "answer": "ensemble_average",
        "test": "ensemble_average_test",
        "source": 'def ensemble_average(logits_list) -> torch.Tensor:\n    """Mean over models of softmax(logits, dim=-1): (N, C) probabilities from M tensors (N, C)."""\n    return torch.stack(list(logits_list)).mean(dim=0).softmax(dim=-1)',
    },
    # Smoothing mass eps/(C-1) on the wrong classes only, instead of eps/C on every class.
    "04_regularize": {
        "answer": "smoothed_cross_entropy",
        "test": "smoothed_cross_entropy_test",
        "source": 'def smoothed_cross_entropy(logits, targets, eps):\n    """Mean over samples of (1 - eps) * (-log p_y) + (eps / C) * sum_c (-log p_c).\n\n    logits: (N, C) floats; targets: (N,) int64 class indices; eps in [0, 1]. Returns a 0-dim tensor.\n    """\n    log_p = F.log_softmax(logits, dim=1)\n    num_classes = logits.shape[1]\n    target = torch.full_like(log_p, eps / (num_classes - 1))\n    target = target.scatter(1, targets.unsqueeze(1), 1 - eps)\n    return -(target * log_p).sum(dim=1).mean()',
    },
    # The popular forum snippet: fills both bias vectors, so the effective forget bias is 2.
    "03_overfit": {
        "answer": "lstm_forget_bias",
        "test": "lstm_forget_bias_test",
        "source": 'def set_forget_bias(lstm: nn.Module, value: float = 1.0) -> nn.Module:\n    """Make b_if + b_hf == value in every layer/direction of an nn.LSTM or nn.LSTMCell, in place."""\n    hidden = lstm.hidden_size\n    with torch.no_grad():\n        for name, param in lstm.named_parameters():\n            if name.startswith("bias"):  # the popular snippet: fills bias_ih AND bias_hh\n                param[hidden : 2 * hidden].fill_(value)\n    return lstm\n',
    },
}
