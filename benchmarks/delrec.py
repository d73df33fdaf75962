"""DELRec against its SASRec teacher and the LLM baselines on ml-100k and amazon-scientific, on this CPU.

    python -m benchmarks.delrec [--home DIR] [--datasets ml-100k,amazon-scientific] [--seeds 2024,7]
        [--test-users 16] [--train-users 12] [--distill-users 4] [--n-soft 20] [--lora-top-layers 10]

For each dataset (its own lake under ``--home``): ingest, a leave-one-out split (the pipeline's own jobs);
then for each seed: the teacher (SASRec, fixed epochs, training prefixes only) and its top-10 table, the
prompt table (Spark), and ``jobs.delrec.train.run``: stage 1 (soft prompt on TA + RPS), stage 2 (LoRA, q/v),
and on the same test candidates the teacher ranking them by its own scores, the frozen LLM zero-shot, LoRA
without the soft prompt (the "without stage 1" ablation), stage 1 only and random. Each seed draws its own
users. Writes benchmarks/reports/delrec.{json,md}: HR@1 / HR@5 / NDCG@5 per system (per seed and pooled),
McNemar tests of DELRec against the teacher and the ablation (per seed and pooled over seeds), training
seconds per stage, scored users/s, peak memory, load average. Everything is sized for a shared 2-core CPU
(see the sizes printed in the report); nothing is tuned on test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core import lake
from jobs.core.settings import DEFAULT_DATASET, Settings

REPORTS = Path(__file__).resolve().parent / "reports"
DATASETS = DEFAULT_DATASET.parent  # ../shared/datasets: read in place, never copied
SYSTEMS = ("delrec", "teacher", "lora", "stage1_only", "zero_shot", "random")
LABELS = {"delrec": "DELRec (stage 1 + 2)", "teacher": "SASRec teacher", "lora": "LoRA, no soft prompt",
          "stage1_only": "stage 1 only", "zero_shot": "zero-shot LLM", "random": "random"}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def prepare(settings: Settings, source: Path) -> dict:
    """Ingest and split (leave-one-out) once per lake; later runs reuse them."""
    from jobs.ingest import batch as ingest
    from jobs.split.table import read_meta
    from jobs.split.table import run as split

    started = time.time()
    if not lake.exists(settings, lake.INTERACTIONS):
        ingest.run(settings, source=source, batch_date=date(2026, 1, 1))
    if not lake.exists(settings, lake.split_table("loo")):
        split(settings, strategy="loo", name="loo")
    return {"seconds": round(time.time() - started, 1), "split": read_meta(settings, "loo")["counts"]}


def top_layer_targets(settings: Settings, llm: str, top: int) -> list[str] | None:
    """LoRA targets: q/v of the top ``top`` decoder layers (None = the default, every layer)."""
    if top <= 0:
        return None
    from jobs.profiles.llm import resolve

    n = json.loads((resolve(settings, llm) / "config.json").read_text())["num_hidden_layers"]
    return [f"layers.{k}.self_attn.{m}" for k in range(n - top, n) for m in ("q_proj", "v_proj")]


def train_teacher(settings: Settings, args) -> dict:
    """One SASRec teacher per dataset (seeded by the first seed), shared by the seeds' LLM runs."""
    from jobs.delrec import teacher

    started = time.time()
    result = teacher.run(settings, split="loo", name="teacher", seed=args.seeds[0], epochs=args.teacher_epochs)
    return {"seconds": round(time.time() - started, 1), "test_metrics": result["meta"]["test_metrics"]}


def one_seed(settings: Settings, seed: int, args) -> dict:
    from jobs.delrec import data, train

    name = f"s{seed}"
    table = data.run(settings, split="loo", teacher="teacher", name=name, seed=seed, max_history=args.max_history,
                     max_title_chars=args.max_title_chars)
    targets = top_layer_targets(settings, args.llm, args.lora_top_layers)
    summary = train.run(settings, data=name, llm=args.llm, max_distill=args.distill_users,
                        max_train=args.train_users, max_test=args.test_users, n_soft=args.n_soft, rank=args.rank,
                        alpha=2.0 * args.rank, epochs=(1, 1), batch_size=args.batch, max_length=args.max_length,
                        seed=seed, targets=targets, output_dir=settings.runs_dir / f"delrec-bench-{name}")
    return {"seed": seed, "data_seconds": table["seconds"], "data_kept": table["meta"]["kept"],
            "data_skipped": table["meta"]["skipped"], "summary": summary}


def pooled(runs: list[dict]) -> dict:
    """Every system's metrics over the test users of all seeds together, and pooled McNemar tests."""
    from jobs.delrec.train import paired_tests, slice_metrics

    frames = [pd.read_parquet(r["summary"]["scores_path"]) for r in runs]
    width = max(len(c) for f in frames for c in f["candidate_ids"])
    scores = {s: np.concatenate([np.stack(f[s].to_numpy()) for f in frames]) for s in SYSTEMS}
    assert all(v.shape[1] == width for v in scores.values())
    targets = np.concatenate([f["target_index"].to_numpy() for f in frames])
    n_train = np.concatenate([f["n_train"].to_numpy() for f in frames])
    return {"metrics": {s: slice_metrics(v, targets, n_train) for s, v in scores.items()},
            "significance": paired_tests(scores, targets)}


def fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def dataset_section(name: str, entry: dict) -> list[str]:
    runs, pool = entry["runs"], entry["pooled"]
    teacher = {k: round(v, 4) for k, v in entry["teacher"]["test_metrics"].items() if k in ("ndcg_at_10", "hr_at_10")}
    lines = [f"## {name}", "", f"Split (leave-one-out): {entry['prepare']['split']}. Teacher (full ranking, test): "
             f"{teacher}; data job seconds per seed: {', '.join(str(r['data_seconds']) for r in runs)}.", "",
             "| system | " + " | ".join(f"HR@1 s{r['seed']}" for r in runs)
             + " | HR@1 pooled | HR@5 pooled | NDCG@5 pooled | HR@1 sparse (n) | train s (per seed) | users/s |",
             "|---|" + "---|" * (len(runs) + 6)]
    for system in SYSTEMS:
        per_seed = " | ".join(fmt(r["summary"]["metrics"][system]["all"]["hr_at_1"]) for r in runs)
        allm, sparse = pool["metrics"][system]["all"], pool["metrics"][system]["sparse"]
        timing = [r["summary"]["timing"][system] for r in runs]
        train_s = ", ".join(str(t.get("train_seconds")) for t in timing) if system != "teacher" else str(
            entry["teacher"]["seconds"]) + " (one teacher)"
        speed = ", ".join(str(t.get("users_per_s", "-")) for t in timing)
        lines.append(f"| {LABELS[system]} | {per_seed} | {fmt(allm['hr_at_1'])} | {fmt(allm['hr_at_5'])} | "
                     f"{fmt(allm['ndcg_at_5'])} | {fmt(sparse['hr_at_1']) if sparse['n'] else 'n/a'} ({sparse['n']})"
                     f" | {train_s} | {speed} |")
    lines += ["", "Stage 1 (soft prompt) seconds per seed: "
              + ", ".join(str(r["summary"]["stage1"]["train_seconds"]) for r in runs)
              + "; final task weights (TA / RPS): "
              + "; ".join(str(r["summary"]["stage1"]["final_weights"]) for r in runs) + ".", ""]
    for key, label in (("delrec_vs_teacher", "teacher"), ("delrec_vs_lora", "no-soft-prompt ablation")):
        parts = [f"s{r['seed']}: " + _mcnemar(r["summary"]["significance"].get(key)) for r in runs]
        lines.append(f"- DELRec vs {label}, McNemar on HR@1 hits: {'; '.join(parts)}; pooled: "
                     f"{_mcnemar(pool['significance'].get(key))}.")
    return lines + [""]


def _mcnemar(test: dict | None) -> str:
    if not test:
        return "n/a"
    m = test["hr_at_1_mcnemar"]
    return f"only DELRec hit {m['a_only']}, only the other {m['b_only']}, p = {m['p']:.3f} (n {m['n']})"


def verdict(entry: dict) -> str:
    metrics, sig = entry["pooled"]["metrics"], entry["pooled"]["significance"]
    d, t, a = (metrics[s]["all"]["hr_at_1"] for s in ("delrec", "teacher", "lora"))
    pt = sig["delrec_vs_teacher"]["hr_at_1_mcnemar"]["p"]
    pa = sig["delrec_vs_lora"]["hr_at_1_mcnemar"]["p"]
    word = lambda x, y: "beats" if x > y else ("ties" if x == y else "does NOT beat")  # noqa: E731
    return (f"On ml-100k (pooled over seeds, {metrics['delrec']['all']['n']} test users) DELRec's HR@1 {d:.4f} "
            f"{word(d, t)} its SASRec teacher's {t:.4f} (McNemar p = {pt:.3f}) and {word(d, a)} the "
            f"no-soft-prompt ablation's {a:.4f} (p = {pa:.3f}).")


def markdown(report: dict) -> str:
    a = report["args"]
    lines = ["# DELRec on ml-100k and amazon-scientific (SmolLM2-135M-Instruct, CPU)", "",
             f"Run {report['finished']} on {report['machine']}, {report['minutes']} min in all; load average "
             f"before / after: {report['load_before']} / {report['load_after']}; peak RSS {report['peak_rss_mb']} MB.",
             "", f"Sizes (a shared 2-core CPU): per seed {a['test_users']} test users, {a['train_users']} stage-2 "
             f"users, {a['distill_users']} users per stage-1 task (TA; RPS with 3 steps each), 1 epoch per stage, "
             f"K = {a['n_soft']} soft-prompt vectors, LoRA rank {a['rank']} on q/v of "
             f"{'the top ' + str(a['lora_top_layers']) if a['lora_top_layers'] else 'all'} layers, batch {a['batch']}, "
             f"latest {a['max_history']} titles per prompt, titles cut at {a['max_title_chars']} characters, "
             f"one SASRec teacher per dataset ({a['teacher_epochs']} epochs, no early stopping). "
             "20 candidates per test user (the true next item + 19 "
             "unseen items); random expects HR@1 = 0.05. Seeds: " + ", ".join(map(str, a["seeds"])) + " (each its "
             "own sampled candidates, users and initialisation).", ""]
    if "ml-100k" in report["datasets"]:
        lines += ["**" + verdict(report["datasets"]["ml-100k"]) + "**", ""]
    for name, entry in report["datasets"].items():
        lines += dataset_section(name, entry)
    lines += ["Sparse = test users with at most 5 training items (ml-100k has none: every user rated 20+ films).",
              "Timings are wall-clock on a machine shared with other work; users/s counts scored test users.", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path, stem: str, render, started: float) -> None:
    """``<out>/<stem>.{json,md}`` with the run's end time, load average after, minutes and peak RSS added
    (shared by the LLM-method benchmarks)."""
    import resource

    report |= {"finished": datetime.now(UTC).isoformat(timespec="seconds"), "load_after": load(),
               "minutes": round((time.time() - started) / 60, 1),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"{stem}.md").write_text(render(report))


def write(report: dict, args, started: float) -> None:
    write_report(report, args.out, "delrec", markdown, started)


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".ktrec") / "bench-delrec")
    parser.add_argument("--datasets", default="ml-100k,amazon-scientific")
    parser.add_argument("--seeds", default="2024,7")
    parser.add_argument("--test-users", type=int, default=16)
    parser.add_argument("--train-users", type=int, default=12)
    parser.add_argument("--distill-users", type=int, default=4)
    parser.add_argument("--n-soft", type=int, default=20)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lora-top-layers", type=int, default=10, help="LoRA on q/v of the top N layers (0 = all)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--max-history", type=int, default=5)
    parser.add_argument("--max-title-chars", type=int, default=48)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started, load_before = time.time(), load()
    print(f"load average before: {load_before}", flush=True)
    report = {"args": vars(args) | {"home": str(args.home), "out": str(args.out)}, "datasets": {},
              "load_before": load_before, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "torch_threads": torch.get_num_threads()}
    from jobs.profiles.llm import resolve

    args.llm = str(resolve(Settings(home=args.home), args.llm))  # one prepared model folder for every lake
    for name in args.datasets.split(","):
        settings = Settings(home=args.home / name)
        entry = {"prepare": prepare(settings, DATASETS / name), "runs": []}
        entry["teacher"] = train_teacher(settings, args)
        for seed in args.seeds:
            entry["runs"].append(one_seed(settings, seed, args) | {"load_after": load()})
            print(f"{name} seed {seed} done at {round((time.time() - started) / 60, 1)} min, load {load()}", flush=True)
        entry["pooled"] = pooled(entry["runs"])
        report["datasets"][name] = entry
        write(report, args, started)  # after every dataset: a later failure keeps what finished
    print(markdown(report))
    print(f"load average after: {report['load_after']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
