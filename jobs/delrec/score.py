"""Score with a saved DELRec model: ``ktrec delrec score --model DIR --data NAME [--cutoff test] [--user U]``.

:func:`load` puts a model folder (``ktrec delrec train``'s ``run_dir/model``; the MLflow version's artifact)
back on its LLM, CUDA when present. :func:`run` scores a prompt table's examples at a cut-off with the same
prompt text and truncation rule as training (the model's own context limit), and returns each user's
ranking (candidate ids, best first) and, since the table holds the answers, HR@1 / HR@5 / NDCG@5 through
the one evaluator.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core.settings import Settings
from jobs.delrec.prepare import draw, read_table, to_examples

log = logging.getLogger(__name__)


def load(model_dir: Path, *, llm_path: Path | None = None, device: str | None = None):
    from models.delrec import io

    return io.load(Path(model_dir), llm_path=llm_path, device=device)


def run(settings: Settings, *, model_dir: Path, data: str, cutoff: str = "test", users: list[str] | None = None,
        limit: int | None = None, seed: int = 2024, device: str | None = None, output: Path | None = None) -> dict:
    """Rank the candidates of ``delrec/<data>``'s recommendation examples at ``cutoff``; metrics and rankings."""
    from jobs.delrec.train import slice_metrics

    frame, meta = read_table(settings, data)
    model = load(model_dir, device=device)
    rows = draw(frame, "rec", cutoff, limit, seed=seed, users=users)
    examples, kept, counts = to_examples(rows, codec=model.codec, teacher=model.config["teacher"],
                                         n_soft=model.soft.n_tokens, max_length=int(model.config["max_length"]))
    if not len(examples):
        raise ValueError(f"no {cutoff} examples to score in delrec/{data} for the given users: {counts}")
    started = time.perf_counter()
    scores = model.score(examples.prompts, examples.candidates)
    seconds = time.perf_counter() - started
    order = np.argsort(-scores, axis=1, kind="stable")
    ids = [np.asarray(c) for c in kept["candidate_ids"]]
    ranking = pd.DataFrame({"user_id": kept["user_id"], "target_id": kept["target_id"],
                            "ranked_ids": [list(c[o[:len(c)]]) for c, o in zip(ids, order, strict=True)],
                            "rank_of_target": (order == examples.targets[:, None]).argmax(axis=1) + 1})
    if output:
        ranking.to_parquet(output, index=False)
    return {"data": f"delrec/{data}", "cutoff": cutoff, "counts": counts, "users": len(ranking),
            "metrics": slice_metrics(scores, examples.targets, kept["n_train"].to_numpy()),
            "users_per_s": round(len(ranking) / seconds, 4), "output": str(output) if output else None,
            "rankings": ranking.head(20).to_dict(orient="records")}
