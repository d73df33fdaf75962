"""Data-parallel training (models.distributed, jobs.train.distributed): real gloo process groups started by a real
TorchDistributor on the local Spark session, on a small split (200 users, 60 items, two taste groups). Two ranks
end with bit-identical weights and reach the one-process test NDCG@10 within seed noise, beside the driver or as
Spark barrier tasks; a rank that dies fails the run naming it and leaves no run folder; one process is exactly
today's trainer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from kt_toys import TOY_MODELS, toy_profiles, write_toy_profiles, write_toy_split
from test_trainer import KT_SCENARIO

from models.data import load_split
from models.distributed import Ranks, local_part, param_digest
from models.scenario import parse_scenario
from models.trainer import Trainer

N_USERS, N_ITEMS, PER_USER = 200, 60, 12
BPR_KT = {"name": "bpr-kt", "commands": [
    {"init_model": {"name": "bpr", "config": {"embedding_dim": 16}}},
    {"set_kt": {"layer": "item_embedding", "side": "item", "loss": "cosine", "alpha": 0.5}},
    {"train": {"epochs": 3, "lr": 0.01, "batch_size": 128}},
    {"remove_kt": {}},
    {"train": {"epochs": 6, "lr": 0.01, "batch_size": 128, "patience": 2}},
    {"eval": {"split": "valid"}}, {"eval": {"split": "test"}}, {"save": {}},
]}


def _lake(settings, tmp_path, scenario=BPR_KT):
    """The split, item profiles (before the split's train_end) and the scenario file."""
    write_toy_split(settings, n_users=N_USERS, n_items=N_ITEMS, per_user=PER_USER)
    emb = toy_profiles(N_ITEMS).embeddings.tolist()
    write_toy_profiles(settings, entity="item",
                       rows=[(f"i{i}", emb[i], "template:none:v1", "2023-12-31T00:00:00Z") for i in range(N_ITEMS)])
    path = tmp_path / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_two_ranks_end_bit_identical_and_reach_the_one_process_ndcg(settings, spark, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.train import scenario_run
    from jobs.train.run_folder import load_model

    path = _lake(settings, tmp_path)
    result = CliRunner().invoke(app, ["train", "--scenario", str(path), "--split", "toy", "--seed", "3",
                                      "--num-processes", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    # (a) every rank's weights after training, digested on the rank itself: bit-identical, and what was saved.
    digests = summary["distributed"]["param_digests"]
    assert summary["distributed"]["num_processes"] == 2 and len(digests) == 2
    assert digests[0] == digests[1] == param_digest(load_model(summary["run_dir"]))
    assert json.loads(open(summary["metrics_path"]).read())["distributed"]["param_digests"] == digests

    # (b) the same scenario in one process, over three seeds.
    inputs = scenario_run.prepare(settings, scenario=path, split="toy", seed=3)
    one = {}
    for seed in (3, 4, 5):
        trained = Trainer(data=inputs.data, profiles=inputs.profiles, seed=seed, progress=False).run(inputs.plan)
        one[seed] = trained.evals["test"].metrics["ndcg_at_10"]
    spread = max(one.values()) - min(one.values())
    two = summary["metrics"]["ndcg_at_10"]
    print(f"test NDCG@10: 1 process {one}, 2 processes (seed 3) {two!r}; s/epoch: 1 process "
          f"{trained.seconds_per_epoch:.3f} (seed 5), 2 processes {summary['seconds_per_epoch']:.3f}")
    # Tolerance: the range of the one-process NDCG@10 over seeds 3-5 on this split, the noise a change of seed
    # alone makes (measured 0.217-0.237, a range of 0.020). With the default `split` sharding the two ranks take
    # the same optimiser steps on the same batches as one process, so only the floating-point order of the
    # gradient sums differs and the seed-3 runs should agree far more closely than two seeds do (here they agree
    # to every digit); a 2-process value farther from the 1-process one than the whole seed range is not noise.
    assert spread > 0
    assert abs(two - one[3]) <= spread
    assert two > 0.1  # far above an untrained model on this split (random ranking: about 0.05)


@pytest.mark.parametrize(("hard", "message"), [
    (False, r"failed on rank 1 of 2: RuntimeError: injected failure on rank 1"),
    (True, r"failed: rank 1 of 2 died without reporting an error"),
], ids=["raises", "crashes"])
def test_a_dying_rank_fails_the_run_naming_it_and_leaves_no_run_folder(settings, spark, tmp_path, hard, message):
    from jobs.train.distributed import DistributedTrainingError, run

    path = _lake(settings, tmp_path)
    out = settings.runs_dir / "ddp-failed"
    # Rank 1 fails once it has trained, while rank 0 holds a trained model it would otherwise publish.
    with pytest.raises(DistributedTrainingError, match=message) as err:
        run(settings, scenario=path, split="toy", seed=3, num_processes=2, epochs=2, output_dir=out, fail_rank=1,
            fail_hard=hard)
    assert err.value.rank == 1
    assert not out.exists()
    assert list(settings.runs_dir.iterdir()) == []  # no staged run folder, no rank reports left behind


def test_ranks_can_run_as_spark_barrier_tasks(settings, spark, tmp_path):
    """``train.local_mode: false``, the standalone-cluster path (one rank per Spark barrier task), on local[2]."""
    from jobs.train.distributed import run

    on_tasks = settings.model_copy(update={"train": settings.train.model_copy(update={"local_mode": False})})
    summary = run(on_tasks, scenario=_lake(settings, tmp_path), split="toy", seed=3, num_processes=2, epochs=2,
                  progress=False)
    digests = summary["distributed"]["param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert [p.name for p in settings.runs_dir.iterdir()] == [Path(summary["run_dir"]).name]


# Recorded on main before data-parallel training existed (models/trainer.py at 1120bb9). float32 sums differ
# in the last bits between CPU kernels (AVX2/AVX-512), hence rel 1e-6 rather than bit equality across machines.
BPR_SEED3 = (0.2830672818989246, [0.6921735356251398, 0.6810228625933329, 0.6629993220170339,
                                  0.6351195921500524], [3])


def _toy_kt(split, profiles, ranks):
    return Trainer(data=split, profiles=profiles, seed=7, models=TOY_MODELS, progress=False, ranks=ranks).run(
        parse_scenario(KT_SCENARIO, models=TOY_MODELS))


def test_one_process_is_todays_trainer(settings, tmp_path):
    import torch.distributed as dist

    from jobs.train import distributed, scenario_run

    split = load_split(write_toy_split(settings))
    profiles = {"user": toy_profiles(split.n_users), "item": toy_profiles(split.n_items)}
    plain = _toy_kt(split, profiles, ranks=None)  # no process group at all
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ranks = Ranks.current()  # a group of one is no data parallelism: the plain loop
        in_group = _toy_kt(split, profiles, ranks=ranks)
    finally:
        dist.destroy_process_group()
    assert ranks is None
    assert in_group.evals["test"].metrics == plain.evals["test"].metrics
    assert [e.loss for e in in_group.history] == [e.loss for e in plain.history]
    bpr = Trainer(data=split, profiles={}, seed=3, progress=False).run(parse_scenario({"commands": [
        {"init_model": {"name": "bpr", "config": {"embedding_dim": 8}}},
        {"train": {"epochs": 4, "lr": 0.01, "batch_size": 16, "patience": 2}}, {"eval": {"split": "test"}}]}))
    ndcg, losses, best = BPR_SEED3
    assert bpr.evals["test"].metrics["ndcg_at_10"] == pytest.approx(ndcg, rel=1e-6)
    assert [e.loss for e in bpr.history] == pytest.approx(losses, rel=1e-6) and bpr.best_epochs == best

    # `num_processes=1` is scenario_run.run itself: same metrics for the same seed.
    path = tmp_path / "bpr.yaml"
    path.write_text(yaml.safe_dump({"name": "bpr-baseline", "commands": [
        {"init_model": {"name": "bpr", "config": {"embedding_dim": 8}}},
        {"train": {"epochs": 3, "lr": 0.01, "batch_size": 32}}]}))
    args = {"scenario": path, "split": "toy", "seed": 5, "progress": False}
    one_process = scenario_run.run(settings, **args)["metrics"]
    assert distributed.run(settings, num_processes=1, **args)["metrics"] == one_process


def test_the_nightly_train_task_passes_num_processes_on(settings, monkeypatch):
    from datetime import date

    from jobs.nightly import tasks
    from jobs.train import distributed

    seen = {}

    def fake_run(_settings, **kwargs):
        seen.update(kwargs)
        return {"model": "bpr", "variant": "kt", "metrics": {}, "run_dir": "r", "split": "s", "history": []}

    monkeypatch.setattr(distributed, "run", fake_run)
    tasks.train_one(settings, model="bpr", variant="kt", split="s", run_date=date(2026, 1, 2), num_processes=3)
    assert seen["num_processes"] == 3 and seen["output_dir"] == settings.runs_dir / "2026-01-02" / "bpr-kt"


def test_shards_cover_every_row_once_and_keep_the_stream_order():
    batches = [{"user": torch.arange(s, s + n), "pos_item": torch.arange(s, s + n) * 10}
               for s, n in ((0, 5), (5, 5), (10, 3), (13, 1))]
    for world in (2, 3):
        split = [[local_part([b], r, world, "split") for b in batches] for r in range(world)]
        seen = [b["user"] for parts in zip(*split, strict=True) for b in parts if b is not None]
        assert torch.equal(torch.cat(seen), torch.arange(14))  # each batch cut into contiguous pieces, in order
        assert all(torch.equal(b["pos_item"], b["user"] * 10) for r in split for b in r if b is not None)
        assert split[0][3] is None or split[world - 1][3] is None  # a 1-row batch: some rank gets nothing
        steps = [batches[i:i + world] for i in range(0, len(batches), world)]
        stride = [local_part(step, r, world, "stride") for step in steps for r in range(world)]
        assert torch.equal(torch.cat([b["user"] for b in stride if b is not None]), torch.arange(14))
    with pytest.raises(ValueError, match="shard must be one of"):
        Ranks(0, 2, "rows")
