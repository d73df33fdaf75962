"""Writes the KT-gain benchmark's report: JSON (everything), a Markdown table and a bar chart PNG.

Kept apart from benchmarks/kt_gain.py so the run and its presentation change independently. The
Markdown has a generated results section; hand-written findings go in benchmarks/reports/kt_gain_notes.md
and are appended verbatim, so a rerun never loses them.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_report(report: dict, out_dir: Path, *, stem: str = "kt_gain") -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str))
    paths["md"].write_text(markdown(report, notes=out_dir / f"{stem}_notes.md"))
    bar_chart(report["results"], paths["png"])
    return {k: str(v) for k, v in paths.items()}


def _pm(entry: dict, variant: str, metric: str) -> str:
    mean, std = entry.get(f"{variant}_{metric}_mean"), entry.get(f"{variant}_{metric}_std")
    return "–" if mean is None else f"{mean:.4f} ± {std:.4f}"


def _gain(entry: dict, metric: str) -> str:
    gain, test = entry.get(f"gain_{metric}"), entry.get(f"ttest_{metric}")
    return "–" if gain is None else f"{gain:+.1%} (p={test['p']:.3g})"


def markdown(report: dict, *, notes: Path | None = None) -> str:
    s = report["settings"]
    lines = [
        "# KT gain: baseline vs LLM-KT, ml-100k", "",
        f"Settings: models `{s['models']}`, splits `{s['splits']}`, seeds {s['seeds']}, epochs "
        f"{s['epochs'] or 'from conf'}, profiles generator `{s['generator'] or 'latest of any'}`, "
        f"lake `{s['home']}`. Full ranking, train (+valid for test) items masked. Total {report['seconds']:.0f} s.",
        "",
        "| split | model | NDCG@10 baseline | NDCG@10 KT | gain (paired t over users) | Recall@10 baseline "
        "| Recall@10 KT | gain | sparse users NDCG@10 base → KT (p) | s/epoch base / KT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["results"]:
        sparse = "–"
        if "sparse_users" in e:
            sparse = (f"{e['sparse_baseline_ndcg_at_10']:.4f} → {e['sparse_kt_ndcg_at_10']:.4f} "
                      f"(n={e['sparse_users']}, p={e['sparse_ttest_ndcg_at_10']['p']:.3g})")
        lines.append(
            f"| {e['split']} | {e['model']} | {_pm(e, 'baseline', 'ndcg_at_10')} | {_pm(e, 'kt', 'ndcg_at_10')} "
            f"| {_gain(e, 'ndcg_at_10')} | {_pm(e, 'baseline', 'recall_at_10')} | {_pm(e, 'kt', 'recall_at_10')} "
            f"| {_gain(e, 'recall_at_10')} | {sparse} "
            f"| {e.get('baseline_seconds_per_epoch', 0):.2f} / {e.get('kt_seconds_per_epoch', 0):.2f} |")
    if report.get("peer"):
        lines += ["", "## Peer: RecBole 1.2.1 on the same split files", "",
                  "| split | model | NDCG@10 | Recall@10 | s/epoch | note |", "|---|---|---|---|---|---|"]
        for p in report["peer"]:
            lines.append(f"| {p['split']} | {p['model']} | {p.get('ndcg_at_10', float('nan')):.4f} "
                         f"| {p.get('recall_at_10', float('nan')):.4f} | {p.get('seconds_per_epoch', float('nan')):.2f} "
                         f"| {p.get('note', '')} |")
    if notes is not None and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def bar_chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [f"{e['model']}\n{e['split']}" for e in results]
    x = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(results)), 4))
    for offset, variant in ((-0.2, "baseline"), (0.2, "kt")):
        means = [e.get(f"{variant}_ndcg_at_10_mean", np.nan) for e in results]
        stds = [e.get(f"{variant}_ndcg_at_10_std", 0.0) for e in results]
        ax.bar(x + offset, means, 0.4, yerr=stds, capsize=3, label=variant)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("test NDCG@10 (full ranking)")
    ax.set_title("LLM-KT vs baseline, mean ± std over seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
