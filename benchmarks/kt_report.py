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


def _pm(entry: dict, metric: str) -> str:
    return f"{entry[f'{metric}_mean']:.4f} ± {entry[f'{metric}_std']:.4f}"


def _gain(entry: dict, metric: str) -> str:
    gain, test = entry.get(f"gain_{metric}"), entry.get(f"ttest_{metric}")
    return "–" if gain is None else f"{gain:+.1%} (p={test['p']:.2g})"


def markdown(report: dict, *, notes: Path | None = None) -> str:
    s = report["settings"]
    lines = [
        "# KT gain: baseline vs LLM-KT, ml-100k", "",
        f"Settings: models `{s['models']}`, splits `{s['splits']}`, variants `{s['variants']}`, seeds {s['seeds']}, "
        f"epochs {s['epochs'] or 'from conf'}, torch threads {s['threads']}, profiles generator "
        f"`{s['generator'] or 'latest of any'}`, lake `{s['home']}`. Test split, full ranking (train + valid "
        f"items masked). Gains are relative to the baseline; p from a paired t-test over users (per-user "
        f"values averaged over seeds). Sparse users: ≤ 20 training interactions. "
        + ("Re-reported from the run folders (`--from-runs`)." if s.get("from_runs")
           else f"Total {report['seconds']:.0f} s."),
        "",
        "| split | model | variant | NDCG@10 | gain (p) | Recall@10 | gain (p) "
        "| sparse users NDCG@10 base → variant (n, p) "
        "| s/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["results"]:
        sparse = "–"
        if "sparse" in e:
            sp = e["sparse"]
            sparse = (f"{sp['baseline_ndcg_at_10']:.4f} → {sp['ndcg_at_10']:.4f} "
                      f"(n={sp['users']}, p={sp['ttest']['p']:.2g})")
        lines.append(
            f"| {e['split']} | {e['model']} | {e['variant']} | {_pm(e, 'ndcg_at_10')} | {_gain(e, 'ndcg_at_10')} "
            f"| {_pm(e, 'recall_at_10')} | {_gain(e, 'recall_at_10')} | {sparse} | {e['seconds_per_epoch']:.2f} |")
    if report.get("peer"):
        lines += ["", "## Peer: RecBole 1.2.1 on the same split files", "",
                  "| split | model | NDCG@10 | Recall@10 | s/epoch | note |", "|---|---|---|---|---|---|"]
        for p in report["peer"]:
            lines.append(f"| {p['split']} | {p['model']} | {p.get('ndcg_at_10', float('nan')):.4f} "
                         f"| {p.get('recall_at_10', float('nan')):.4f} "
                         f"| {p.get('seconds_per_epoch', float('nan')):.2f} "
                         f"| {p.get('note', '')} |")
    if notes is not None and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def bar_chart(results: list[dict], path: Path) -> None:
    """One panel per split (leave-last-out scores are a fifth of random's), bars per model and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    splits = list(dict.fromkeys(e["split"] for e in results))
    variants = list(dict.fromkeys(e["variant"] for e in results))
    by_key = {(e["split"], e["model"], e["variant"]): e for e in results}
    width = 0.8 / len(variants)
    fig, axes = plt.subplots(1, len(splits), figsize=(max(6, 5 * len(splits)), 4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        models = list(dict.fromkeys(e["model"] for e in results if e["split"] == split))
        x = np.arange(len(models))
        for i, variant in enumerate(variants):
            found = [by_key.get((split, m, variant)) for m in models]
            means = [e["ndcg_at_10_mean"] if e else np.nan for e in found]
            stds = [e["ndcg_at_10_std"] if e else 0.0 for e in found]
            ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=3, label=variant)
        ax.set_xticks(x, models, fontsize=8)
        ax.set_title(f"{split} split")
        ax.set_ylabel("test NDCG@10 (full ranking)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("LLM-KT vs baseline, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
