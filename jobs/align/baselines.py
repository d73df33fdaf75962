"""The conventional recommenders beside the alignment systems: the project's SASRec and BPR-MF, trained on the
same leave-one-out split with ``ktrec train``'s own job, ranking the same catalogue for the same test users.

SASRec uses DELRec's teacher scenario (fixed epochs, training prefixes only); BPR-MF the ``bpr`` baseline
scenario (early stopping on valid, as that model is tuned everywhere else in ktrec). :func:`top_lists` scores
every catalogue item for each user after its train + valid history (models.delrec.teacher.candidate_scores:
the user's items masked, an item the model never saw scores ``-inf``) and returns the top-``k`` catalogue
positions, so the conventional and the LLM systems meet on the one evaluator with identical targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jobs.core import lake
from jobs.core.settings import REPO_ROOT, Settings

SCENARIOS = {"sasrec": REPO_ROOT / "conf" / "delrec" / "teacher.yaml",
             "bpr": REPO_ROOT / "conf" / "bpr" / "baseline.yaml"}
DISPLAY = {"sasrec": "SASRec", "bpr": "BPR-MF"}


def train(settings: Settings, *, model: str, split: str, seed: int, epochs: int | None = None) -> dict:
    """Train ``model`` on ``split``; returns the run summary (``run_dir``, metrics, seconds)."""
    import time

    from jobs.train.scenario_run import run

    started = time.perf_counter()
    summary = run(settings, scenario=SCENARIOS[model], split=split, seed=seed, epochs=epochs, progress=False,
                  output_dir=settings.runs_dir / f"align-{model}-{split}-s{seed}")
    return summary | {"train_seconds": round(time.perf_counter() - started, 2)}


def top_lists(settings: Settings, *, split: str, run_dir: Path, users: list[str], catalogue, k: int = 10):
    """(per user, the top-``k`` catalogue positions after its train + valid history; seconds per user)."""
    import time

    from jobs.train import run_folder
    from models.data import load_split
    from models.delrec.teacher import candidate_scores

    data = load_split(lake.table_path(settings, lake.split_table(split)))
    model = run_folder.load_model(Path(run_dir), data=data)
    started = time.perf_counter()
    scores = candidate_scores(model, data, users, [catalogue.item_ids] * len(users), cutoff="test")
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[:k]
        out.append([int(p) for p in order if np.isfinite(row[p])])
    return out, round((time.perf_counter() - started) / max(1, len(users)), 4)
