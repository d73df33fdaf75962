"""Data-parallel training of one scenario: ``ktrec train --num-processes N``, N ranks under DDP.

The driver reads what a one-process run reads (jobs.train.scenario_run.prepare: the scenario, the split, the
Feast profile targets) and hands it to Spark's TorchDistributor (pyspark.ml.torch.distributor), which starts the
ranks: torchrun processes beside the driver with ``train.local_mode`` (the default), or Spark barrier tasks, one
rank per task, on the executors of ``spark.master`` (a standalone cluster) with ``train.local_mode: false``, where
the runs folder must be shared storage. Every rank joins a gloo process group (the trainer runs on CPU) and runs
the trainer as one rank of the group (models.distributed). Rank 0 then evaluates and hands the summary to every
rank; that broadcast is the last collective, which succeeds only once every rank has finished training, and only
after it does rank 0 write the run folder through jobs.train.run_folder.write (one rename), so a rank that dies
leaves no run folder. A rank that fails records its error in a scratch folder beside the runs, and the driver
raises :class:`DistributedTrainingError` naming the first rank that failed (TorchDistributor's local mode does not
itself fail when a rank does: its torchrun wrapper drops the exit status). With one process the job is
scenario_run.run itself.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import pickle
import shutil
import signal
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from jobs.core.settings import Settings

log = logging.getLogger(__name__)
BACKEND = "gloo"  # NCCL needs the model and batches on the GPU; the trainer keeps them on the CPU


class DistributedTrainingError(RuntimeError):
    """A distributed training run failed; ``rank`` is the first rank that reported an error (None if none did)."""

    def __init__(self, message: str, rank: int | None = None) -> None:
        super().__init__(message)
        self.rank = rank


@dataclass
class RankJob:
    """What every rank receives (pickled by TorchDistributor)."""

    settings: Settings
    inputs: Any  # jobs.train.scenario_run.Inputs
    models: dict[str, type] | None
    shard: str
    timeout_s: int
    reports: str  # folder where a failing rank writes rank-<r>.json
    fail_rank: int | None = None  # test hook: this rank fails once it has trained...
    fail_hard: bool = False  # ... by raising, or by exiting at once (a crash) when set


def run(
    settings: Settings, *, scenario: Path, split: str, seed: int, num_processes: int | None = None,
    output_dir: Path | None = None, epochs: int | None = None, generator: str | None = None,
    models: dict[str, type] | None = None, progress: bool = True, fail_rank: int | None = None,
    fail_hard: bool = False, twin: bool = False,
) -> dict:
    """scenario_run.run on ``num_processes`` ranks (default ``settings.train.num_processes``); the same summary,
    plus ``distributed`` (world size, backend, shard, each rank's parameter digest). ``fail_rank`` is a test
    hook: that rank fails after training, before the run folder would be written (``fail_hard``: it exits at once,
    like a killed process, instead of raising)."""
    from jobs.train import scenario_run  # pandas and the lake: not imported for the CLI's error type

    n = settings.train.num_processes if num_processes is None else int(num_processes)
    if n < 1:
        raise ValueError(f"num_processes must be >= 1, got {n}")
    if n == 1:
        return scenario_run.run(settings, scenario=scenario, split=split, seed=seed, output_dir=output_dir,
                                epochs=epochs, generator=generator, models=models, progress=progress, twin=twin)
    inputs = scenario_run.prepare(settings, scenario=scenario, split=split, seed=seed, output_dir=output_dir,
                                  epochs=epochs, generator=generator, models=models, twin=twin)
    reports = settings.runs_dir / f".ddp-{uuid.uuid4().hex[:12]}"
    reports.mkdir(parents=True)
    job = RankJob(settings, inputs, models, settings.train.shard, settings.train.collective_timeout_s,
                  str(reports), fail_rank, fail_hard)
    try:
        return _summary(_launch(settings, n, job), n, reports)
    finally:
        shutil.rmtree(reports, ignore_errors=True)


def _launch(settings: Settings, n: int, job: RankJob) -> Any:
    from pyspark.ml.torch.distributor import TorchDistributor

    from jobs.core.spark import get_spark

    get_spark(settings)  # TorchDistributor runs on the active session
    distributor = TorchDistributor(num_processes=n, local_mode=settings.train.local_mode, use_gpu=False)
    started = time.perf_counter()
    try:
        with _rank_environment(settings.train.local_mode):
            return distributor.run(rank_main, job)
    except Exception as exc:
        failure = _failure(Path(job.reports), n) or DistributedTrainingError(
            f"distributed training on {n} processes failed before any rank reported an error: {exc}")
        raise failure from exc
    finally:
        log.info("%d ranks ran for %.1fs", n, time.perf_counter() - started)


def _summary(payload: Any, n: int, reports: Path) -> dict:
    """The run's summary once rank 0 has published the run folder; else the error naming the failed rank."""
    summary = pickle.loads(payload) if isinstance(payload, bytes) else None
    failure = _failure(reports, n)  # e.g. rank 0 failed to write, after the other ranks returned the payload
    if failure is None and summary is not None and Path(summary["metrics_path"]).is_file():
        return summary
    raise failure or DistributedTrainingError(
        f"distributed training on {n} processes ended without rank 0 publishing a run folder", rank=0)


@contextlib.contextmanager
def _rank_environment(local: bool):
    """Local ranks import this checkout's code and keep gloo on the loopback interface."""
    saved = dict(os.environ)
    try:
        if local:
            root = str(Path(__file__).resolve().parents[2])
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            if Path("/sys/class/net/lo").exists():
                os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def rank_main(job: RankJob) -> bytes:
    """One rank (torchrun sets RANK and WORLD_SIZE): join the group, train, return the pickled summary."""
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    reports = Path(job.reports)
    _mark(reports, rank, "started")
    signal.signal(signal.SIGTERM, functools.partial(_terminated, reports, rank, world))
    try:
        dist.init_process_group(BACKEND, timeout=timedelta(seconds=job.timeout_s))
        try:
            payload = _train_rank(job, rank)
        finally:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    except BaseException as exc:
        _report(reports, rank, world, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        raise
    _mark(reports, rank, "done")
    return payload


def _train_rank(job: RankJob, rank: int) -> bytes:
    from jobs.train import scenario_run
    from models.distributed import Ranks, broadcast_object, gather, param_digest
    from models.trainer import Trainer

    ranks = Ranks.current(job.shard)
    inputs = job.inputs
    result = Trainer(data=inputs.data, profiles=inputs.profiles, seed=inputs.seed, models=job.models,
                     progress=False, ranks=ranks).run(inputs.plan)
    if job.fail_rank == rank:
        if job.fail_hard:
            os._exit(13)  # a crash: no exception, no report
        raise RuntimeError(f"injected failure on rank {rank} after training (test hook fail_rank)")
    digests = gather(param_digest(result.model), ranks)
    out, summary = None, None
    if ranks.leader:
        out = scenario_run.outcome(job.settings, inputs, result)
        out.metrics["distributed"] = {"num_processes": ranks.world, "backend": BACKEND, "shard": ranks.shard,
                                      "param_digests": digests}
        summary = out.summary | {"distributed": out.metrics["distributed"]}
    # The last collective: it completes only when every rank has trained. Every rank returns the same bytes,
    # since TorchDistributor's local mode has all of them write its one output file.
    payload = broadcast_object(pickle.dumps(summary) if ranks.leader else None, ranks)
    if out is not None:
        scenario_run.publish(out)
    return payload


# --- rank reports: rank-<r>.started / .done markers and rank-<r>.json error records ---------------------------
SECONDARY = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Timed out", "SIGTERM")


def _mark(folder: Path, rank: int, what: str) -> None:
    with contextlib.suppress(OSError):
        (folder / f"rank-{rank}.{what}").touch()


def _report(folder: Path, rank: int, world: int, error: str, trace: str = "") -> None:
    record = {"rank": rank, "world": world, "time": time.time(), "error": error, "traceback": trace[-4000:]}
    with contextlib.suppress(OSError):
        (folder / f"rank-{rank}.json").write_text(json.dumps(record))


def _terminated(folder: Path, rank: int, world: int, *_) -> None:
    """SIGTERM: the launcher stops the ranks left once one has failed; say so, then go."""
    _report(folder, rank, world, "stopped by the launcher (SIGTERM) after another rank failed")
    os._exit(143)


def _failure(folder: Path, n: int) -> DistributedTrainingError | None:
    """The error naming the rank that failed first: the earliest error that is not a consequence of another
    rank's loss (a closed connection, a timeout, the launcher's SIGTERM); else a rank that started and vanished
    without a word (killed, out of memory); else the earliest error. None when no rank failed."""
    records = []
    for path in folder.glob("rank-*.json"):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text()))
    records.sort(key=lambda r: r["time"])
    ranks_with = {what: {int(p.name.split(".")[0][5:]) for p in folder.glob(f"rank-*.{what}")}
                  for what in ("started", "done")}
    vanished = sorted(ranks_with["started"] - ranks_with["done"] - {r["rank"] for r in records})
    if not records and not vanished:
        return None
    primary = [r for r in records if not any(mark in r["error"] for mark in SECONDARY)]
    if primary or not vanished:
        first = (primary or records)[0]
        rank, head = first["rank"], f"failed on rank {first['rank']} of {n}: {first['error']}"
    else:
        first, rank = None, vanished[0]
        head = f"failed: rank {rank} of {n} died without reporting an error (killed? out of memory?)"
    others = [f"rank {r['rank']}: {r['error'].splitlines()[0][:200]}" for r in records if r is not first]
    message = f"distributed training {head}" + (f"; afterwards {'; '.join(others)}" if others else "")
    trace = f"\n--- rank {rank} ---\n{first['traceback']}" if first and first["traceback"] else ""
    return DistributedTrainingError(message + trace, rank)
