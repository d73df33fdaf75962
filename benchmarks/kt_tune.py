"""Tune every CF model's no-KT twin and its KT variant alike (jobs.train.tune, Optuna TPE), for the KT-gain grid.

Run::

    python -m benchmarks.kt_tune --home DIR [--split random] [--models bpr,...] [--trials 8] [--epochs 20]
                                 [--generator template:] [--workers 2] [--time-epochs] [--untuned-only]

For each model, two studies on ``--split`` with the same trials, epochs per trial and seed: the twin
(``conf/<model>/kt.yaml`` with ``twin``, space without the transfer keys) and KT (the whole space, α and the
hooked layer included). Selection on valid NDCG@10 only; the test split is blanked out of every trial. Each
study is logged as an MLflow run under ``--home`` (experiment ``ktrec-tune``). The tuned scenarios are written
to ``<home>/runs/kt_gain/tuned/<model>/{twin,kt}.yaml``, beside ``baseline.yaml`` (the conf's old single-stage
baseline, untuned) and ``twin_conf.yaml`` (the conf's KT scenario with ``twin: true``, untuned: against
``baseline`` it isolates the restart effect); ``benchmarks.kt_gain --conf-dir`` reads that folder.

``--time-epochs`` only times one epoch (train + valid ranking) of each model's twin, to size the search.
Report: benchmarks/reports/kt_tune.{json,md} (sizes, load average, best values, seconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import yaml

from jobs.core.settings import REPO_ROOT, Settings, get_settings

log = logging.getLogger("benchmarks.kt_tune")
MODELS = ("bpr", "lightgcn", "multvae", "simplex", "neumf", "sasrec")
CONF = REPO_ROOT / "conf"
REPORTS = REPO_ROOT / "benchmarks" / "reports"


def tuned_dir(settings: Settings) -> Path:
    return settings.runs_dir / "kt_gain" / "tuned"


def write_untuned(settings: Settings, model: str) -> None:
    """baseline.yaml (the conf's, verbatim), kt_conf.yaml (the conf's KT scenario) and twin_conf.yaml (the
    same with twin: true)."""
    folder = tuned_dir(settings) / model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "baseline.yaml").write_text((CONF / model / "baseline.yaml").read_text())
    raw = yaml.safe_load((CONF / model / "kt.yaml").read_text())
    raw.pop("search", None)
    (folder / "kt_conf.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (folder / "twin_conf.yaml").write_text(yaml.safe_dump({"twin": True, **raw, "name": f"{model}-twin-conf"},
                                                          sort_keys=False))


def one_study(settings: Settings, *, model: str, variant: str, split: str, trials: int, epochs: int | None,
              generator: str | None, seed: int, threads: int) -> dict:
    import torch

    from jobs.train.tune import run

    torch.set_num_threads(threads)
    summary = run(settings, scenario=CONF / model / "kt.yaml", split=split, seed=seed, twin=variant == "twin",
                  trials=trials, epochs=epochs, generator=generator, progress=False,
                  output_dir=settings.runs_dir / "tune" / f"{model}-{variant}-{split}")
    target = tuned_dir(settings) / model / f"{variant}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(Path(summary["paths"]["best.yaml"]).read_text())
    log.info("%s %s: best valid ndcg@10 %.4f with %s (%.0f s)", model, variant, summary["best_value"],
             summary["best_params"], summary["seconds"])
    return summary


def time_epochs(settings: Settings, *, models: list[str], split: str, generator: str | None) -> list[dict]:
    """Seconds of one epoch (train + valid ranking) of each model's twin and KT run, one thread each."""
    from jobs.train.scenario_run import run

    rows = []
    for model in models:
        for twin in (True, False):
            started = time.perf_counter()
            summary = run(settings, scenario=CONF / model / "kt.yaml", split=split, seed=0, epochs=2, twin=twin,
                          generator=generator, progress=False,
                          output_dir=settings.runs_dir / "timing" / f"{model}-{'twin' if twin else 'kt'}")
            rows.append({"model": model, "variant": "twin" if twin else "kt",
                         "seconds_per_epoch_with_eval": (time.perf_counter() - started) / 2,
                         "train_seconds_per_epoch": json.loads(Path(summary["metrics_path"]).read_text())[
                             "seconds_per_epoch"]})
            log.info("timing %s", rows[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--split", default="random")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None, help="total epochs per trial (default: the block's)")
    parser.add_argument("--generator", default="template:", help="profiles the KT trials transfer from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="studies in parallel (processes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plan", default=None,
                        help="per-model sizes MODEL:TRIALS:EPOCHS,... (overrides --models/--trials/--epochs)")
    parser.add_argument("--time-epochs", action="store_true")
    parser.add_argument("--untuned-only", action="store_true",
                        help="only write baseline/twin_conf/kt_conf (the conf's values) for a grid without tuning")
    parser.add_argument("--tag", default="kt_tune")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["KTREC_HOME"] = str(args.home)
    get_settings.cache_clear()
    settings = get_settings()
    models = args.models.split(",")
    sizes = {m: (args.trials, args.epochs) for m in models}
    if args.plan:
        sizes = {m: (int(t), int(e)) for m, t, e in (part.split(":") for part in args.plan.split(","))}
        models = list(sizes)
    started, load_before = time.perf_counter(), os.getloadavg()
    report: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "load_before": load_before}
    if args.time_epochs:
        report["timing"] = time_epochs(settings, models=models, split=args.split, generator=args.generator)
    else:
        for model in models:
            write_untuned(settings, model)
        if args.untuned_only:
            log.info("wrote the untuned scenarios under %s", tuned_dir(settings))
            return 0
        jobs = [dict(model=m, variant=v, split=args.split, trials=sizes[m][0], epochs=sizes[m][1],
                     generator=args.generator, seed=args.seed, threads=args.threads)
                for m in models for v in ("twin", "kt")]
        from concurrent.futures import ProcessPoolExecutor

        from jobs.registry.tracking import log_study

        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(one_study, settings, **job) for job in jobs]
            report["studies"] = []
            for job, future in zip(jobs, futures, strict=True):
                try:
                    summary = future.result()
                    # logged here, one process at a time: MLflow's SQLite store does not take concurrent writers
                    summary["mlflow_run_id"] = log_study(settings, summary=summary)
                    report["studies"].append(summary)
                except Exception as exc:  # one failed study must not lose the others' results
                    log.exception("study %s failed", job)
                    report["studies"].append({**job, "error": repr(exc)})
                _write(report, args.tag, started)  # after every study: a stopped run keeps what it found
    _write(report, args.tag, started)
    log.info("wrote %s", REPORTS / f"{args.tag}.md")
    return 0


def _write(report: dict, tag: str, started: float) -> None:
    report["seconds"], report["load_after"] = time.perf_counter() - started, os.getloadavg()
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{tag}.json").write_text(json.dumps(report, indent=2, default=str))
    (REPORTS / f"{tag}.md").write_text(markdown(report))


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"# {s['tag']}: Optuna TPE, twin vs KT, same trials and epochs", "",
             f"Split `{s['split']}` under `{s['home']}`, sizes (model:trials:epochs per trial) "
             f"`{s['plan'] or (s['models'], s['trials'], s['epochs'])}`, seed {s['seed']}, "
             f"KT profiles `{s['generator']}`, "
             f"{s['workers']} studies at a time, {s['threads']} torch thread(s) each. Selection on valid NDCG@10; "
             f"test blanked out of every trial. Load average before {report['load_before']}, after "
             f"{report['load_after']}; total {report['seconds']:.0f} s.", ""]
    if "timing" in report:
        lines += ["| model | variant | s/epoch (train + valid ranking) | train s/epoch |", "|---|---|---|---|"]
        lines += [f"| {t['model']} | {t['variant']} | {t['seconds_per_epoch_with_eval']:.2f} "
                  f"| {t['train_seconds_per_epoch']:.2f} |" for t in report["timing"]]
    for st in report.get("studies", []):
        if "error" in st:
            lines.append(f"- {st['model']} {st['variant']}: failed: {st['error']}")
    if report.get("studies"):
        lines += ["| model | variant | trials × epochs | best valid NDCG@10 | trial values | best params | s |",
                  "|---|---|---|---|---|---|---|"]
        for st in report["studies"]:
            if "error" in st:
                continue
            values = ", ".join(f"{v:.4f}" if v is not None else "failed" for v in st["values"])
            lines.append(f"| {st['model']} | {st['variant']} | {st['trials']} × {st['epochs']} "
                         f"| {st['best_value']:.4f} | {values} "
                         f"| `{json.dumps(st['best_params'])}` | {st['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
