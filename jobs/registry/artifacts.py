"""What :mod:`jobs.registry.tracking` reads from a training run folder and writes into an MLflow run.

Kept apart from the registry logic so the run-folder conventions sit in one place: the trainer's
``metrics.json`` (test metrics and the per-epoch ``history``; a ``history.json``/``history.jsonl`` beside
it also works), ``scenario.yaml``, and ``model.pt`` + ``model.json`` (state dict, model name, config and
the id maps), which :func:`load_trained` turns back into a model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from jobs.core.settings import REPO_ROOT, Settings
from jobs.train import run_folder


def flat_params(summary: dict[str, Any]) -> dict[str, str]:
    """Run params: the summary's identity fields plus the scenario YAML flattened to dotted keys."""
    import yaml

    params: dict[str, Any] = {
        k: summary.get(k) for k in ("model", "variant", "split", "seed", "epochs", "profile_version")
    }
    if summary.get("scenario_path") and Path(summary["scenario_path"]).is_file():
        scenario = yaml.safe_load(Path(summary["scenario_path"]).read_text()) or {}
        params |= _flatten(scenario, "scenario")
    # MLflow caps a param value at 6000 characters; long lists are summarised by the YAML artifact.
    return {k: str(v)[:500] for k, v in params.items() if v is not None}


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}.{k}")
        return out
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out |= _flatten(v, f"{prefix}.{i}")
        return out
    return {prefix: value}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_dataset_inputs(settings: Settings, *, summary: dict[str, Any]) -> int:
    """Log the split, interactions and profile versions the run used as MLflow dataset inputs."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from jobs.core import lake
    
    entries: list[tuple[str, Path, str, str]] = []
    split_version = lake.current_version(settings, lake.split_table(summary["split"]))
    if split_version is not None:
        entries.append(
            (f"split:{summary['split']}", split_version, split_digest(settings, summary["split"]), "training")
        )
    version = lake.current_version(settings, lake.INTERACTIONS)
    if version is not None:
        entries.append((lake.INTERACTIONS, version, _digest(version.name), "source"))
    # Profiles: the trainer reports which profile rows it read (per side); digest that report.
    used = summary.get("profile_version") or {}
    for side, table in (("user", lake.USER_PROFILES), ("item", lake.ITEM_PROFILES)):
        version = lake.current_version(settings, table)
        if version is not None and (side in used or not used):
            digest = (
                _digest(json.dumps(used.get(side), sort_keys=True, default=str))
                if side in used
                else _digest(version.name)
            )
            entries.append((table, version, digest, "profiles"))
    with warnings.catch_warnings():  # both local artifact source classes match a file URI; same thing
        warnings.simplefilter("ignore", UserWarning)
        datasets = [
            MetaDataset(
                source=resolve_dataset_source(Path(path).absolute().as_uri()), name=name, digest=digest
            )
            for name, path, digest, _ in entries
        ]
    if datasets:
        mlflow.log_inputs(
            datasets=datasets,
            contexts=[context for *_, context in entries],
            tags_list=[{"ktrec.version": Path(path).name} for _, path, *_ in entries],
        )
    return len(datasets)


def log_recommender(model: Any, train_data: Any, *, name: str = "model"):
    """Log the trained model as the top-k pyfunc with a signature and an input example."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from models.serving import DEFAULT_K, TopKRecommender, save_artifacts

    example = pd.DataFrame({"user_id": [str(u) for u in list(train_data.user_ids[:3])]})
    with tempfile.TemporaryDirectory(prefix="ktrec-model-") as tmp:
        artifacts = save_artifacts(model, train_data, Path(tmp))
        served = TopKRecommender()
        served.load_context(type("Ctx", (), {"artifacts": artifacts})())
        params = {"k": DEFAULT_K, "exclude_seen": True}
        output = served.predict(None, example, params)
        signature = infer_signature(example, output, params=params)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=served_class(),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            code_paths=[models_code_path()],
            pip_requirements=_requirements(),
        )


def _requirements() -> list[str]:
    """Pinned explicitly: MLflow's inference imports the model in a subprocess (tens of seconds)."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name).split('+')[0]}"
        for name in ("mlflow", "torch", "numpy", "pandas", "scipy", "cloudpickle")
    ]


def served_class():
    """A fresh, unloaded instance (the pickled python_model must not carry the loaded torch model)."""
    from models.serving import TopKRecommender

    return TopKRecommender()


def load_trained(settings: Settings, *, summary: dict[str, Any]) -> tuple[Any, Any]:
    """The trained Recommender and the data it serves from, for the run at ``summary["run_dir"]``.

    The trainer's run folder holds ``model.pt`` (state dict) + ``model.json`` (name, config, id maps);
    the served "seen" items are the split's train + valid interactions (what the test ranking masks).
    """
    from jobs.core.lake import split_table, table_path
    from models.cf.base import TrainData
    from models.data import load_split

    run_dir = Path(summary["run_dir"])
    spec = run_folder.model_spec(run_dir)
    split = load_split(table_path(settings, split_table(summary["split"])))
    if list(map(str, split.train.user_ids)) != list(map(str, spec["user_ids"])):
        raise ValueError(
            f"split {summary['split']!r} changed since {run_dir} was trained: its user ids differ"
        )
    served = TrainData(
        user_ids=split.train.user_ids,
        item_ids=split.train.item_ids,
        train=split.test_mask,
        sequences=split.test_sequences,
    )
    return run_folder.load_model(run_dir), served


def split_digest(settings: Settings, split: str) -> str:
    """Identity of a test split: the split table's version folder and its meta.json."""
    from jobs.core.lake import current_version, split_table

    version = current_version(settings, split_table(split))
    if version is None:
        return hashlib.sha256(f"unversioned:{split}".encode()).hexdigest()[:16]
    # The meta (strategy, seed, counts, train_end) identifies the content, so a rerun that rebuilds the
    # same split gets the same digest; without a meta the version folder does.
    meta = version / "meta.json"
    payload = meta.read_text() if meta.is_file() else version.name
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def models_code_path() -> str:
    """The ``models`` package travels with each logged model, so the pyfunc loads anywhere."""
    return str(REPO_ROOT / "models")
