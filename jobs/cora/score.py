"""Score (user, item) pairs with a saved CoRA adapter: ``ktrec cora score --adapter DIR --pairs FILE``.

:func:`load_adapter` loads the adapter folder onto its frozen LLM and returns a :class:`CoRAScorer`
whose :meth:`CoRAScorer.score` renders each pair's prompt from the lake as of now (the user's latest
liked titles, the same template and threshold as training) and returns P(Yes). The MLflow champion
loader only has to hand a folder to :func:`load_adapter`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core import lake
from jobs.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class CoRAScorer:
    def __init__(self, adapter, *, settings: Settings) -> None:
        self.adapter = adapter
        self.settings = settings
        meta = adapter.config.get("data_meta", {})
        self.threshold = float(meta.get("threshold", 4.0))
        self.max_history = int(meta.get("max_history", 10))
        self._history: pd.DataFrame | None = None

    def _liked(self) -> pd.DataFrame:
        """The lake's liked events with titles, newest last (read once)."""
        if self._history is None:
            events = lake.read_frame(self.settings, lake.INTERACTIONS,
                                     columns=["user_id", "item_id", "rating", "event_ts"])
            liked = events[events["rating"] >= self.threshold].sort_values("event_ts", kind="stable")
            self._history = liked.merge(self.titles().rename("title"), left_on="item_id", right_index=True, how="left")
        return self._history

    def titles(self) -> pd.Series:
        items = lake.read_frame(self.settings, lake.ITEMS, columns=["item_id", "title"])
        return items.set_index(items["item_id"].astype(str))["title"]

    def prompts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        from models.cora.prompt import render

        liked = self._liked()
        titles = self.titles()
        by_user = {u: g for u, g in liked.groupby(liked["user_id"].astype(str))}
        out = []
        for user, item in pairs:
            history = by_user.get(str(user))
            names = [] if history is None else history["title"].fillna("item " + history["item_id"].astype(str))
            out.append(render(list(names)[-self.max_history:], titles.get(str(item)) or f"item {item}"))
        return out

    def score(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 16) -> np.ndarray:
        """P(Yes) for each (user_id, item_id) pair, in order."""
        if not pairs:
            return np.zeros(0)
        users, items = [str(u) for u, _ in pairs], [str(i) for _, i in pairs]
        return self.adapter.probabilities(users, items, self.prompts(pairs), batch_size=batch_size)


def load_adapter(path: Path, *, settings: Settings | None = None, llm_path: Path | None = None) -> CoRAScorer:
    from models.cora.io import read_adapter

    return CoRAScorer(read_adapter(Path(path), llm_path=llm_path), settings=settings or get_settings())


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """A CSV/TSV/Parquet file with ``user_id`` and ``item_id`` columns."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep=None, engine="python", dtype=str)
    missing = {"user_id", "item_id"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)} (need user_id, item_id)")
    return list(zip(frame["user_id"].astype(str), frame["item_id"].astype(str), strict=False))
