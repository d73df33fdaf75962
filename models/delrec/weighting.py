"""Dynamic task weights for stage 1: gradient-norm balancing of the two distilling tasks, weights summing to 1.

Each step gives one gradient per task on the soft prompt (the only trainable tensor). The weights are
``w_i = (1 / n_i) / sum_j (1 / n_j)`` with ``n_i`` an exponential moving average of the norm of task ``i``'s
gradient, so after weighting each task moves the soft prompt by about the same amount whatever the scale
of its loss. Why this and not uncertainty weighting (learned log-variances): the tasks reach the soft prompt
through separate forward passes, so their gradients come apart at no extra cost; the weights react from the
first step, where learned variances hardly move in the few hundred steps a CPU budget allows; there is no
extra parameter to tune; and it is the authors' scheme (weights from gradient norms, summing to 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class GradNormWeights:
    def __init__(self, tasks: Sequence[str], *, momentum: float = 0.9) -> None:
        if not tasks or not 0.0 <= momentum < 1.0:
            raise ValueError(f"need at least one task and 0 <= momentum < 1, got {list(tasks)}, {momentum}")
        self.tasks, self.momentum = list(tasks), momentum
        self.norms: dict[str, float] = {}

    def update(self, grads: dict[str, torch.Tensor]) -> dict[str, float]:
        """Fold this step's gradient norms into the averages; the weights of the tasks present."""
        for task, grad in grads.items():
            if task not in self.tasks:
                raise ValueError(f"unknown task {task!r}; weighting {self.tasks}")
            norm = float(grad.norm())
            old = self.norms.get(task)
            self.norms[task] = norm if old is None else self.momentum * old + (1 - self.momentum) * norm
        inverse = {t: 1.0 / max(self.norms[t], 1e-12) for t in grads}
        total = sum(inverse.values())
        return {t: v / total for t, v in inverse.items()}

    def combine(self, grads: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted sum of the task gradients, and the weights used."""
        weights = self.update(grads)
        return sum(weights[t] * g for t, g in grads.items()), weights
