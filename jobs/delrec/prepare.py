"""From the lake's prompt rows to model examples: seeded draws, the truncation rule, counted outcomes.

:func:`draw` takes up to ``n`` rows of one task and cut-off (seeded, by user, so a run is reproducible and
the stage-1, stage-2 and test users are drawn independently of the table's row order). :func:`to_examples`
renders each row's prompt (models.delrec.prompts.render) and applies the truncation rule: while the prompt
plus the soft prompt plus the longest candidate exceeds ``max_length`` tokens, the oldest history title goes
(never the last ``history_keep``); a row that still does not fit is skipped. Both outcomes are counted
(``truncated``, ``prompt_too_long``), so no example is cut or lost silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.delrec.data import delrec_table
from models.delrec import prompts
from models.delrec.stages import Examples


def read_table(settings: Settings, name: str) -> tuple[pd.DataFrame, dict]:
    """The prompt table's rows and its meta.json; a clear error when it has not been built."""
    path = lake.require(settings, delrec_table(name))
    return lake.read_frame(settings, delrec_table(name)), json.loads((Path(path) / "meta.json").read_text())


def draw(frame: pd.DataFrame, task: str, cutoff: str, n: int | None, *, seed: int,
         users: list[str] | None = None) -> pd.DataFrame:
    """Rows of ``task`` at ``cutoff`` for up to ``n`` seeded users (or for ``users``), all steps of each."""
    rows = frame[(frame["task"] == task) & (frame["cutoff"] == cutoff)]
    pool = sorted(rows["user_id"].unique())
    if users is not None:
        chosen = set(users) & set(pool)
    elif n is not None and len(pool) > n:
        chosen = set(np.random.default_rng(seed).choice(pool, size=n, replace=False))
    else:
        chosen = set(pool)
    return rows[rows["user_id"].isin(chosen)].sort_values(["user_id", "step"]).reset_index(drop=True)


def fitted_prompt(row, *, codec, teacher: str, n_soft: int, max_length: int) -> tuple[str | None, int]:
    """(the row's prompt after the truncation rule, or None when it cannot fit; titles dropped)."""
    history, candidates, given = list(row.history_titles), list(row.candidate_titles), list(row.given_titles)

    def text(h: list[str]) -> str:
        return prompts.render(row.task, teacher=teacher, history=h, candidates=candidates, given=given)

    drop = prompts.fit_history(lambda h: codec.context_length(text(h), candidates, n_soft) <= max_length, history,
                               int(row.history_keep))
    return (None, 0) if drop is None else (text(history[drop:]), drop)


def to_examples(rows: pd.DataFrame, *, codec, teacher: str, n_soft: int, max_length: int) -> tuple[
        Examples, pd.DataFrame, dict]:
    """(examples, the rows they came from, counts) with the truncation rule applied; see the module doc."""
    kept, texts, counts = [], [], {"rows": len(rows), "truncated": 0, "prompt_too_long": 0}
    for index, row in zip(rows.index, rows.itertuples(index=False), strict=True):
        text, dropped = fitted_prompt(row, codec=codec, teacher=teacher, n_soft=n_soft, max_length=max_length)
        if text is None:
            counts["prompt_too_long"] += 1
            continue
        counts["truncated"] += int(dropped > 0)
        kept.append(index)
        texts.append(text)
    out = rows.loc[kept].reset_index(drop=True)
    examples = Examples(prompts=texts, candidates=[list(c) for c in out["candidate_titles"]],
                        targets=out["target_index"].to_numpy(), users=out["user_id"].astype(str).tolist())
    return examples, out, counts
