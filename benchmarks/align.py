"""Recommendation-knowledge alignment (Cao et al.) on amazon-scientific and ml-100k, on this CPU.

    python -m benchmarks.align [--home DIR] [--datasets amazon-scientific,ml-100k] [--seeds 2024,7]
        [--test-users 16] [--budget 64] [--llm smollm2]

For each dataset (its own lake under ``--home``): ingest and a leave-one-out split (the pipeline's jobs), the
task-sample table (Spark, built once with the first seed: every system sees the same test samples), the
project's SASRec and BPR-MF (once, first seed) ranking the whole catalogue; then per seed
``jobs.align.train.run``: (a) LoRA on the recommendation tasks only, (b) LoRA on recommendation + auxiliary
tasks -- same LLM, LoRA init, sample budget, epochs and batch -- and (c) the frozen LLM zero-shot (once: it
does not depend on the seed). The test users are drawn once per dataset and shared by every system and seed,
so comparisons are paired per user. Writes benchmarks/reports/align.{json,md}: retrieval Recall@5/10 and
NDCG@5/10 over the whole catalogue, ranking NDCG@5 over 20 candidates, rating RMSE / MAE (ml-100k), paired
t-tests (b) vs (a) and (b) vs the best conventional model, Holm-corrected, training seconds, retrieval
seconds per user, peak memory, load average, and one rendered sample per task.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.delrec import load, prepare, write_report
from jobs.core.settings import DEFAULT_DATASET, Settings
from models.metrics import holm

REPORTS = Path(__file__).resolve().parent / "reports"
DATASETS = DEFAULT_DATASET.parent  # ../shared/datasets: read in place, never copied
LABELS = {"rec_aux": "(b) rec + aux tasks (aligned)", "rec_only": "(a) rec tasks only",
          "zero_shot": "(c) frozen zero-shot", "sasrec": "(d) SASRec", "bpr": "(d) BPR-MF"}
RETRIEVAL = ("recall_at_5", "recall_at_10", "ndcg_at_5", "ndcg_at_10")


def samples_md(frame: pd.DataFrame) -> list[str]:
    lines = []
    for task in ("retrieval", "ranking", "rating", "mim", "mlm", "bpr"):
        rows = frame[(frame.task == task) & (frame.cutoff == "train")]
        if rows.empty:
            continue
        row = rows.sort_values("user_id").iloc[0]
        lines += [f"**{task}** (user {row.user_id}, training sample)", "", "```", row.prompt[:700], "```",
                  f"answer: `{row.answer}`", ""]
    return lines


def one_dataset(name: str, args) -> dict:
    from jobs.align import baselines, data, train
    from jobs.align.train import build_catalogue, eval_inputs, test_users
    from jobs.core import lake
    from models.align.prompts import SYSTEM
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_tokenizer
    from models.metrics import evaluate_top_lists

    settings = Settings(home=args.home / name)
    entry = {"prepare": prepare(settings, DATASETS / name), "runs": []}
    started = time.time()
    if args.reuse and lake.exists(settings, data.align_table("bench")):
        meta = data.read_samples(settings, "bench")[1]
        table = {"seconds": "reused", "meta": meta}
    else:
        table = data.run(settings, split="loo", name="bench", seed=args.seeds[0], max_history=args.max_history,
                         max_title_chars=args.max_title_chars)
    entry["data"] = {"seconds": table["seconds"], "kept": table["meta"]["kept"], "skipped": table["meta"]["skipped"],
                     "bad_input": table["meta"]["bad_input"]}
    frame, _, cat_table = data.read_samples(settings, "bench")
    entry["samples_md"] = samples_md(frame)
    codec = Codec(load_tokenizer(Path(args.llm)), system=SYSTEM)
    catalogue = build_catalogue(codec, cat_table)
    users = test_users(frame, args.test_users, seed=args.seeds[0])
    inputs = eval_inputs(frame, catalogue, users)
    entry["conventional"] = {}
    for model in ("sasrec", "bpr"):
        run_dir = settings.runs_dir / f"align-{model}-loo-s{args.seeds[0]}"
        if args.reuse and (run_dir / "metrics.json").is_file():
            from jobs.train import run_folder

            run = run_folder.summary(run_dir) | {"run_dir": str(run_dir), "train_seconds": "reused"}
        else:
            run = baselines.train(settings, model=model, split="loo", seed=args.seeds[0],
                                  epochs=args.sasrec_epochs if model == "sasrec" else None)
        top, seconds = baselines.top_lists(settings, split="loo", run_dir=Path(run["run_dir"]), users=inputs["users"],
                                           catalogue=catalogue)
        result = evaluate_top_lists(top, inputs["targets"], len(catalogue), ks=(5, 10))
        entry["conventional"][model] = {
            "metrics": {f"retrieval_{k}": round(float(result.per_user[k].mean()), 5) for k in RETRIEVAL}
            | {"retrieval_seconds_per_user": seconds}, "train_seconds": run["train_seconds"],
            "per_user_ndcg_at_10": result.per_user["ndcg_at_10"].tolist(),
            "full_split_test": {k: v for k, v in run.get("metrics", {}).items() if k in ("ndcg_at_10", "recall_at_10")}}
        print(f"{name} {model}: {entry['conventional'][model]['metrics']}", flush=True)
    for seed in args.seeds:
        out = settings.runs_dir / f"align-bench-s{seed}"
        done = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else None
        if args.reuse and done and done["budget"] == args.budget and done["test_users"] == len(inputs["users"]):
            summary = done
        elif args.no_train:
            print(f"{name} seed {seed}: no finished run to reuse, left out", flush=True)
            continue
        else:
            summary = train.run(settings, data="bench", llm=args.llm, budget=args.budget, max_test=args.test_users,
                                test_seed=args.seeds[0], zero_shot=seed == args.seeds[0], rank=args.rank,
                                alpha=2.0 * args.rank, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                                beams=args.beams, max_length=args.max_length, seed=seed, output_dir=out)
        scores = pd.read_parquet(summary["scores_path"])
        entry["runs"].append({"seed": seed, "summary": summary, "scores": scores.drop(
            columns=[c for c in scores.columns if c.endswith("_top")]).to_dict(orient="list"), "load_after": load()})
        print(f"{name} seed {seed} done at {round((time.time() - started) / 60, 1)} min, load {load()}: "
              f"{summary['metrics']}", flush=True)
    if not entry["runs"]:  # nothing of the LLM finished in time: report the data and conventional models only
        entry["tests"] = {"best_conventional": None, "tests": {}}
        return entry
    entry["tests"] = significance(entry)
    return entry


def significance(entry: dict) -> dict:
    """Paired t-tests pooled over seeds (pairs = seed x user): (b) vs (a) on retrieval NDCG@10 and ranking
    NDCG@5; (b) vs the best conventional model (by mean NDCG@10) on retrieval NDCG@10."""
    from models.metrics import paired_ttest

    def pooled(system: str, key: str) -> np.ndarray:
        return np.concatenate([np.asarray(r["scores"][f"{system}_{key}"], dtype=float) for r in entry["runs"]])

    conv = entry["conventional"]
    best = max(conv, key=lambda m: conv[m]["metrics"]["retrieval_ndcg_at_10"])
    best_per_user = np.concatenate([np.asarray(conv[best]["per_user_ndcg_at_10"]) for _ in entry["runs"]])
    tests = {"b_vs_a_retrieval_ndcg_at_10": paired_ttest(pooled("rec_aux", "retrieval_ndcg_at_10"),
                                                         pooled("rec_only", "retrieval_ndcg_at_10")),
             f"b_vs_{best}_retrieval_ndcg_at_10": paired_ttest(pooled("rec_aux", "retrieval_ndcg_at_10"),
                                                               best_per_user)}
    a, b = pooled("rec_only", "ranking_ndcg_at_5"), pooled("rec_aux", "ranking_ndcg_at_5")
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() >= 2:
        tests["b_vs_a_ranking_ndcg_at_5"] = paired_ttest(b[keep], a[keep])
    for t in tests.values():
        if not np.isfinite(t["p"]):  # every pair equal (e.g. all zeros): no evidence of a difference
            t["p"] = 1.0
    return {"best_conventional": best, "tests": {k: {m: (round(v, 5) if isinstance(v, float) else v)
                                                     for m, v in t.items()} for k, t in tests.items()}}


def fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def dataset_section(name: str, entry: dict) -> list[str]:
    runs = entry["runs"]
    if not runs:
        return [f"## {name}", "", "**No LLM system finished within the time this run had; only the task data and "
                "the conventional models are reported.**", "", f"Task data: kept {entry['data']['kept']}; bad input "
                f"{entry['data']['bad_input']}; skipped {entry['data']['skipped']}.", "",
                "| system | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 |", "|---|---|---|---|---|"] + [
            f"| {LABELS[m]} | " + " | ".join(fmt(c["metrics"][f"retrieval_{k}"]) for k in RETRIEVAL) + " |"
            for m, c in entry["conventional"].items()] + ["", "Rendered samples (one per task):", ""] + \
            entry["samples_md"]
    first = runs[0]["summary"]
    lines = [f"## {name}", "", f"Split (leave-one-out): {entry['prepare']['split']}. Catalogue: {first['catalogue']}. "
             f"Test users: {first['test_users']} (the same for every system and seed). Task data: "
             f"{entry['data']['seconds']} s (Spark); kept samples {entry['data']['kept']}.", "",
             f"Bad input (counted, none crashed): {entry['data']['bad_input']}; skipped samples by reason: "
             f"{entry['data']['skipped']}.", "",
             "| system | seed | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | ranking NDCG@5 (20 cand.) | rating RMSE | "
             "rating MAE | train s | retrieval s/user |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        s = run["summary"]
        for system in ("rec_aux", "rec_only", "zero_shot"):
            if system not in s["metrics"]:
                continue
            m = s["metrics"][system]
            lines.append(f"| {LABELS[system]} | {run['seed']} | " + " | ".join(fmt(m.get(f"retrieval_{k}"))
                                                                           for k in RETRIEVAL)
                         + f" | {fmt(m.get('ranking_ndcg_at_5'))} | {fmt(m.get('rating_rmse'))} | "
                         f"{fmt(m.get('rating_mae'))} | {s['timing'][system]['train_seconds']} | "
                         f"{fmt(m.get('retrieval_seconds_per_user'))} |")
    for model, c in entry["conventional"].items():
        m = c["metrics"]
        lines.append(f"| {LABELS[model]} | {runs[0]['seed']} | "
                     + " | ".join(fmt(m[f"retrieval_{k}"]) for k in RETRIEVAL)
                     + f" | n/a | n/a | n/a | {c['train_seconds']} | {fmt(m['retrieval_seconds_per_user'])} |")
    lines += ["", "Means over seeds (retrieval NDCG@10): " + ", ".join(
        f"{LABELS[s]} {np.mean([r['summary']['metrics'][s]['retrieval_ndcg_at_10'] for r in runs]):.4f}"
        for s in ("rec_aux", "rec_only")) + ".", "",
        "Training samples per task (per seed): " + "; ".join(
            f"s{r['seed']} {k}: {v['per_task']}" for r in runs for k, v in r["summary"]["training"].items()) + ".",
        "", "Loss first / last tenth of the steps: " + "; ".join(
            f"s{r['seed']} {k}: {v['loss_first_tenth']} -> {v['loss_last_tenth']} ({v['steps']} steps)"
            for r in runs for k, v in r["summary"]["timing"].items() if "steps" in v) + ".", ""]
    lines += ["Paired t-tests (pairs = seed x test user; p Holm-corrected over every test in this report):", ""]
    for key, t in entry["tests"]["tests"].items():
        lines.append(f"- {key}: mean difference {t['mean_diff']:+.4f}, t = {fmt(t['t'])}, p = {fmt(t['p'])}, "
                     f"Holm p = {fmt(t.get('p_holm'))} (n {t['n']})")
    return lines + ["", "Rendered samples (one per task):", ""] + entry["samples_md"]


def verdict(entry: dict) -> str:
    runs = entry["runs"]
    b = np.mean([r["summary"]["metrics"]["rec_aux"]["retrieval_ndcg_at_10"] for r in runs])
    a = np.mean([r["summary"]["metrics"]["rec_only"]["retrieval_ndcg_at_10"] for r in runs])
    t = entry["tests"]["tests"]["b_vs_a_retrieval_ndcg_at_10"]
    word = "beats" if b > a else ("ties" if b == a else "does NOT beat")
    return (f"On amazon-scientific, (b) rec + aux {word} (a) rec only on retrieval NDCG@10: {b:.4f} vs {a:.4f} "
            f"(mean over seeds; paired t p = {fmt(t['p'])}, Holm p = {fmt(t.get('p_holm'))}).")


def markdown(report: dict) -> str:
    a = report["args"]
    lines = ["# Recommendation-knowledge alignment on amazon-scientific and ml-100k (SmolLM2-135M-Instruct, CPU)", "",
             f"Run {report['finished']} on {report['machine']}, {report['minutes']} min in all; load average "
             f"before / after: {report['load_before']} / {report['load_after']}; peak RSS {report['peak_rss_mb']} MB."
             + "".join(f" Datasets {', '.join(m['datasets'])} ran in a parallel process (same code and sizes): "
                       f"{m['minutes']} min, load {m['load_before']} / {m['load_after']}, peak RSS "
                       f"{m['peak_rss_mb']} MB." for m in report.get("merged_runs", [])),
             "", f"Sizes (a shared 2-core CPU): {a['test_users']} test users per dataset, a budget of {a['budget']} "
             f"training samples per system and seed, {a['epochs']} epoch(s), batch {a['batch']}, LoRA rank "
             f"{a['rank']} on q/v of every layer, lr {a['lr']}, retrieval by trie-constrained beam search "
             f"({a['beams']} beams) over the whole catalogue, latest {a['max_history']} titles per prompt, "
             f"titles cut at {a['max_title_chars']} characters, 20 ranking candidates. Seeds: "
             + ", ".join(map(str, a["seeds"])) + " (LoRA init, training-sample draw and order; the task data, test "
             "users and conventional models are built once with the first seed).", ""]
    if report["datasets"].get("amazon-scientific", {}).get("runs"):
        lines += ["**" + verdict(report["datasets"]["amazon-scientific"]) + "**", ""]
    for name, entry in report["datasets"].items():
        lines += dataset_section(name, entry)
    return "\n".join(lines + NOTES)


NOTES = ["## What this measures, and what it does not", "",
         "- **Budget.** Every LLM system here is SmolLM2-135M-Instruct in fp32 on a 2-core CPU shared with three "
         "other CPU-heavy jobs (see the load averages). A training sample costs seconds (forward + backward over "
         "prompts of 100-500 tokens), so each adapter sees only the stated budget of samples once; the paper tunes "
         "FLAN-T5 on every user's samples for many epochs on GPUs. At this budget LoRA barely moves the LLM, so "
         "differences between (a) and (b) are within noise and the conventional models, trained on every "
         "interaction, are far ahead. The result is reported as measured, not as a verdict on the method.",
         "- **Same model and budget.** (a) and (b) share the LLM, the LoRA init (same seed), rank, targets, "
         "learning rate, epochs, batch and the number of training samples; only the task mixture differs "
         "(models/align/mixture.py: equal weights per task, the budget split by largest remainders).",
         "- **Retrieval over the whole catalogue** is trie-constrained beam search: every catalogue title is "
         "reachable, the user's train + valid items are masked inside the trie, and the output is item ids. "
         "Exhaustive title-likelihood scoring of every item (models/align/retrieve.py `score_retrieve`, used in the "
         "tests) costs about 270 s per user on ml-100k's 1,679 titles here, so it cannot run at benchmark scale "
         "on this CPU; a title outside the beams counts as not retrieved.",
         "- **Duplicate titles**: items sharing a title are one answer; it stands for its items in order of "
         "training popularity, then item id, which fill consecutive ranks (masked ones skipped).",
         "- **Conventional models** (d) rank the same catalogue for the same users after the same train + valid "
         "history, through the same evaluator; they are trained once (first seed).",
         "- **Significance**: paired t-tests on per-user values, pairs = seed x user (the users are shared), "
         "Holm-corrected over every test in the report; with this few users only large effects could show.", ""]


def adjust(report: dict) -> None:
    """Holm-correct every test of every dataset in the report together."""
    pvalues = {f"{d}/{k}": t["p"] for d, e in report["datasets"].items() for k, t in e["tests"]["tests"].items()}
    adjusted = dict(zip(pvalues, holm(list(pvalues.values())), strict=True))
    for d, e in report["datasets"].items():
        for k, t in e["tests"]["tests"].items():
            t["p_holm"] = round(adjusted[f"{d}/{k}"], 5)


def write(report: dict, args, started: float) -> None:
    adjust(report)
    write_report(report, args.out, "align", markdown, started)


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".ktrec") / "bench-align")
    parser.add_argument("--datasets", default="amazon-scientific,ml-100k")
    parser.add_argument("--seeds", default="2024,7")
    parser.add_argument("--test-users", type=int, default=16)
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--beams", type=int, default=10)
    parser.add_argument("--max-history", type=int, default=5)
    parser.add_argument("--max-title-chars", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--sasrec-epochs", type=int, default=15)
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--reuse", action="store_true",
                        help="Reuse the task table, conventional runs and finished seeds under --home (resume).")
    parser.add_argument("--no-train", action="store_true", help="With --reuse: report only what has finished.")
    parser.add_argument("--render", type=Path, help="Only re-render the Markdown of this report JSON.")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="With --render: add the datasets of these report JSONs (run in parallel).")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(argv)
    if args.render:  # re-render a finished run's JSON (datasets of --merge reports added, Holm redone)
        report = json.loads(args.render.read_text())
        for other in args.merge:
            extra = json.loads(other.read_text())
            report["datasets"] |= extra["datasets"]
            report["merged_runs"] = report.get("merged_runs", []) + [
                {k: extra[k] for k in ("finished", "minutes", "load_before", "load_after", "peak_rss_mb")}
                | {"datasets": list(extra["datasets"])}]
        adjust(report)
        args.render.write_text(json.dumps(report, indent=2, default=str))
        args.render.with_suffix(".md").write_text(markdown(report))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started, load_before = time.time(), load()
    print(f"load average before: {load_before}", flush=True)
    report = {"args": vars(args) | {"home": str(args.home), "out": str(args.out)}, "datasets": {},
              "load_before": load_before, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "torch_threads": torch.get_num_threads()}
    from jobs.profiles.llm import resolve

    args.llm = str(resolve(Settings(home=args.home), args.llm))  # one prepared model folder for every lake
    for name in args.datasets.split(","):
        report["datasets"][name] = one_dataset(name, args)
        write(report, args, started)  # after every dataset: a later failure keeps what finished
    print(markdown(report))
    print(f"load average after: {report['load_after']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
