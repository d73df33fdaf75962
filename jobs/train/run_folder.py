"""The training run folder, its one owner: what ``ktrec train`` writes and what the registry, CoRA and the
benchmarks read back.

A run folder holds:

- ``metrics.json``: valid and test metrics of the final model (protocol label, user counts), the epoch
  history (losses, validation metric, seconds), best epochs, profile version;
- ``per_user_valid.parquet`` / ``per_user_test.parquet``: per-user metric values (for paired tests);
- ``model.pt`` (torch state_dict of the final model) + ``model.json`` (model name, config, the id <-> index
  maps); ``save_<name>.pt`` for each ``save`` command (the weights at that point of the scenario);
- ``scenario.yaml``: the scenario as run.

:func:`write` publishes it with one rename, so a crash leaves no half-written run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from jobs.core import files

METRICS, MODEL, MODEL_SPEC, SCENARIO = "metrics.json", "model.pt", "model.json", "scenario.yaml"


def write(
    run_dir: Path, *, metrics: dict[str, Any], per_user: dict[str, Any], model: torch.nn.Module,
    spec: dict[str, Any], scenario_yaml: str, snapshots: dict[str, dict] | None = None,
) -> Path:
    """Write a complete run folder at ``run_dir`` (replacing a previous one) in one rename."""
    with files.staged_dir(run_dir) as staged:
        (staged / METRICS).write_text(json.dumps(metrics, indent=2, default=str))
        for name, frame in per_user.items():
            frame.to_parquet(staged / f"per_user_{name}.parquet", index=False)
        torch.save(model.state_dict(), staged / MODEL)
        for name, state in (snapshots or {}).items():  # taken by `save` commands along the way
            torch.save(state, staged / f"save_{name}.pt")
        (staged / MODEL_SPEC).write_text(json.dumps(spec))
        (staged / SCENARIO).write_text(scenario_yaml)
    return Path(run_dir)


def summary(run_dir: Path, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The training summary of a run folder (what ``ktrec train`` returns), rebuilt from its metrics.json."""
    run_dir = Path(run_dir).resolve()
    path = run_dir / METRICS
    if metrics is None:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not a ktrec training run folder")
        metrics = json.loads(path.read_text())
    return {
        "model": metrics["model"],
        "variant": metrics["variant"],
        "metrics": metrics["test"]["metrics"],
        "valid_metrics": metrics.get("valid", {}).get("metrics"),
        "protocol": metrics.get("protocol"),
        "metrics_path": str(path),
        "model_path": str(run_dir / MODEL),
        "scenario_path": str(run_dir / SCENARIO),
        "run_dir": str(run_dir),
        "split": metrics["split"],
        "seed": metrics.get("seed"),
        "profile_version": metrics.get("profile_version"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "history": metrics.get("history", []),
    }


def history(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-epoch records (``{"epoch": 1, "loss": ..., "valid_ndcg@10": ...}``) of a summary; empty when absent."""
    if isinstance(run.get("history"), list):
        return run["history"]
    path = Path(run.get("metrics_path") or Path(run["run_dir"]) / METRICS)
    found = json.loads(path.read_text()).get("history") if path.is_file() else None
    return found if isinstance(found, list) else []


def model_spec(run_dir: Path) -> dict[str, Any]:
    """``model.json``: the model's name, config, sizes and id maps."""
    path = Path(run_dir) / MODEL_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a `ktrec train` run folder (no {MODEL_SPEC})")
    return json.loads(path.read_text())


def trained_split(run_dir: Path) -> str | None:
    """The split a run was trained on (from its metrics.json), if recorded."""
    path = Path(run_dir) / METRICS
    return json.loads(path.read_text()).get("split") if path.is_file() else None


def load_model(run_dir: Path, *, models: dict[str, type] | None = None, data=None) -> torch.nn.Module:
    """Rebuild a trained model from a run folder. Models that keep the training graph outside their weights
    (LightGCN) need the split's ``data`` (models.data.SplitData) to score."""
    if models is None:
        from models.cf import MODELS as models
    spec = model_spec(run_dir)
    model = models[spec["name"]](spec["n_users"], spec["n_items"], **spec["config"])
    model.load_state_dict(torch.load(Path(run_dir) / MODEL, weights_only=True))
    if data is not None:
        model.setup(data.train)
    return model
