"""Writes the KT-gain benchmark's report: JSON (everything), a Markdown table and a bar chart PNG.

Kept apart from benchmarks/kt_gain.py so the run and its presentation change independently. ``write_report``
takes one part per dataset (kt_gain writes ``<stem>_<dataset>.part.json``) and Holm-corrects across the whole
grid, in two families: the verdict family (every KT variant against its reference on full-test NDCG@10, all
datasets × splits × models × profile sources) and the slice family (every slice test of those pairs). The
Markdown has a generated results section; hand-written findings go in benchmarks/reports/<stem>_notes.md and
are appended verbatim, so a rerun never loses them.

``python -m benchmarks.kt_report PART.json [PART.json ...] [--stem kt_gain]`` re-reports saved parts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.metrics import holm

REPORTS = Path(__file__).resolve().parent / "reports"


def write_report(parts: list[dict] | dict, out_dir: Path, *, stem: str = "kt_gain") -> dict[str, str]:
    parts = [parts] if isinstance(parts, dict) else parts
    report = merge(parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str))
    paths["md"].write_text(markdown(report, notes=out_dir / f"{stem}_notes.md"))
    bar_chart(report["results"], paths["png"])
    return {k: str(v) for k, v in paths.items()}


def merge(parts: list[dict]) -> dict:
    """One report from per-dataset parts, with Holm-adjusted p-values written into the pairs."""
    results = [r for p in parts for r in p.get("results", [])]
    pairs = [q for p in parts for q in p.get("pairs", [])]
    verdict = [q for q in pairs if q["kind"] == "kt"]
    for q, adjusted in zip(verdict, holm([q["ttest_ndcg_at_10"]["p"] for q in verdict]), strict=True):
        q["holm_p_ndcg_at_10"] = adjusted
    slices = [(q, name) for q in verdict for name in q.get("slices", {})]
    for (q, name), adjusted in zip(slices, holm([q["slices"][name]["ttest"]["p"] for q, name in slices]),
                                   strict=True):
        q["slices"][name]["holm_p"] = adjusted
    peer = [{"dataset": p.get("dataset", ""), **row} for p in parts for row in (p.get("peer") or [])]
    return {"parts": [{k: p.get(k) for k in ("dataset", "settings", "seconds", "load", "prepared")} for p in parts],
            "results": results, "pairs": pairs, "peer": peer, "runs": [r for p in parts for r in p.get("runs", [])],
            "holm": {"verdict_family": len(verdict), "slice_family": len(slices)}}


def _pm(entry: dict, metric: str) -> str:
    return f"{entry[f'{metric}_mean']:.4f} ± {entry[f'{metric}_std']:.4f}"


def _p(value) -> str:
    return "–" if value is None or value != value else f"{value:.2g}"


def markdown(report: dict, *, notes: Path | None = None) -> str:
    lines = ["# KT gain: tuned no-KT twin vs LLM-KT", ""]
    for part in report["parts"]:
        s = part["settings"] or {}
        load = part.get("load") or {}
        lines.append(f"- **{part['dataset']}**: models `{s.get('models')}`, splits `{s.get('splits')}`, variants "
                     f"`{s.get('variants')}`, sources `{s.get('sources') or s.get('generator')}`, "
                     f"seeds {s.get('seeds')}, "
                     f"epochs `{s.get('plan') or s.get('epochs') or 'from conf'}`, reference `{s.get('reference')}`, "
                     f"{s.get('workers')} runs at a time × {s.get('threads')} thread(s); "
                     f"{(part.get('seconds') or 0):.0f} s; load average before {load.get('before')}, "
                     f"after {load.get('after')}.")
    lines += ["", "Test split, full ranking (train + valid items masked). Paired t-tests over users (per-user "
              "values averaged over seeds). Holm: verdict family = every KT variant vs its reference on NDCG@10 "
              f"({report['holm']['verdict_family']} tests); slice family = their slice tests "
              f"({report['holm']['slice_family']}). MDE: the smallest NDCG@10 change the paired test detects "
              "with 80 % power at α = 0.05 (unadjusted), relative to the reference.", "",
              "## Mean over seeds", "",
              "| dataset | split | model | variant | NDCG@10 | Recall@10 | s/epoch |", "|---|---|---|---|---|---|---|"]
    for e in report["results"]:
        lines.append(f"| {e['dataset']} | {e['split']} | {e['model']} | {e['variant']} | {_pm(e, 'ndcg_at_10')} "
                     f"| {_pm(e, 'recall_at_10')} | {e['seconds_per_epoch']:.2f} |")
    lines += ["", "## Paired comparisons", "",
              "| dataset | split | model | variant vs reference | kind | NDCG@10 | gain | p | Holm p | MDE (rel.) "
              "| Recall@10 gain (p) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for q in report["pairs"]:
        lines.append(
            f"| {q['dataset']} | {q['split']} | {q['model']} | {q['variant']} vs {q['reference']} | {q['kind']} "
            f"| {q['ndcg_at_10_variant']:.4f} vs {q['ndcg_at_10_reference']:.4f} | {q['gain_ndcg_at_10']:+.1%} "
            f"| {_p(q['ttest_ndcg_at_10']['p'])} | {_p(q.get('holm_p_ndcg_at_10'))} "
            f"| {q['mde_ndcg_at_10']['relative']:.1%} "
            f"| {q['gain_recall_at_10']:+.1%} ({_p(q['ttest_recall_at_10']['p'])}) |")
    lines += ["", "## Slices (KT vs reference, NDCG@10)", "",
              "| dataset | split | model | variant | slice | users | reference → variant | gain | p | Holm p |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for q in report["pairs"]:
        if q["kind"] != "kt":
            continue
        for name, sl in q.get("slices", {}).items():
            lines.append(f"| {q['dataset']} | {q['split']} | {q['model']} | {q['variant']} | {name} | {sl['users']} "
                         f"| {sl['reference']:.4f} → {sl['variant']:.4f} | {sl['gain']:+.1%} "
                         f"| {_p(sl['ttest'].get('p'))} | {_p(sl.get('holm_p'))} |")
    if report.get("peer"):
        lines += ["", "## Peer: RecBole 1.2.1 on the same split files", "",
                  "| dataset | split | model | NDCG@10 | Recall@10 | epochs | s/epoch | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in report["peer"]:
            lines.append(f"| {p.get('dataset', '')} | {p['split']} | {p['model']} "
                         f"| {p.get('ndcg_at_10', float('nan')):.4f} | {p.get('recall_at_10', float('nan')):.4f} "
                         f"| {p.get('epochs', '–')} | {p.get('seconds_per_epoch', float('nan')):.2f} "
                         f"| {p.get('note', '')} |")
    if notes is not None and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def bar_chart(results: list[dict], path: Path) -> None:
    """One panel per dataset × split (leave-last-out scores are a fifth of random's), bars per model and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = list(dict.fromkeys((e.get("dataset", ""), e["split"]) for e in results))
    if not panels:
        return
    variants = list(dict.fromkeys(e["variant"] for e in results))
    by_key = {(e.get("dataset", ""), e["split"], e["model"], e["variant"]): e for e in results}
    width = 0.8 / len(variants)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6, 5 * len(panels)), 4), squeeze=False)
    for ax, (dataset, split) in zip(axes[0], panels, strict=True):
        models = list(dict.fromkeys(e["model"] for e in results if (e.get("dataset", ""), e["split"]) ==
                                    (dataset, split)))
        x = np.arange(len(models))
        for i, variant in enumerate(variants):
            found = [by_key.get((dataset, split, m, variant)) for m in models]
            means = [e["ndcg_at_10_mean"] if e else np.nan for e in found]
            stds = [e["ndcg_at_10_std"] if e else 0.0 for e in found]
            ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=3, label=variant)
        ax.set_xticks(x, models, fontsize=8)
        ax.set_title(f"{dataset} {split}")
        ax.set_ylabel("test NDCG@10 (full ranking)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("LLM-KT vs its no-KT twin, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-report saved kt_gain parts (Holm across all of them).")
    parser.add_argument("parts", nargs="+", type=Path)
    parser.add_argument("--stem", default="kt_gain")
    args = parser.parse_args(argv)
    parts = [json.loads(p.read_text()) for p in args.parts]
    print(write_report(parts, REPORTS, stem=args.stem))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
