"""Plots logged with each training run: training curves per epoch and a bar chart of test metrics."""

from __future__ import annotations

from typing import Any


def log_plots(*, history: list[dict[str, Any]], metrics: dict[str, float]) -> list[str]:
    """Log ``plots/training_curves.png`` (when there is a history) and ``plots/test_metrics.png``."""
    import matplotlib

    matplotlib.use("Agg")  # headless: workers have no display
    import matplotlib.pyplot as plt
    import mlflow

    logged: list[str] = []
    series = sorted(
        {k for epoch in history for k, v in epoch.items() if k != "epoch" and isinstance(v, (int, float))}
    )
    if series:
        fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3), squeeze=False)
        for ax, key in zip(axes[0], series, strict=True):
            points = [(e.get("epoch", i), e[key]) for i, e in enumerate(history) if key in e]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
            ax.set_title(key)
            ax.set_xlabel("epoch")
        fig.tight_layout()
        mlflow.log_figure(fig, "plots/training_curves.png")
        plt.close(fig)
        logged.append("plots/training_curves.png")
    if metrics:
        names = sorted(metrics)
        fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(names)), 3))
        ax.bar(range(len(names)), [metrics[n] for n in names])
        ax.set_xticks(range(len(names)), [n.removeprefix("test_") for n in names], rotation=60, ha="right")
        ax.set_title("test metrics")
        fig.tight_layout()
        mlflow.log_figure(fig, "plots/test_metrics.png")
        plt.close(fig)
        logged.append("plots/test_metrics.png")
    return logged
