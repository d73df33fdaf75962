"""Load a lake split table (``splits/<name>``: parquet + ``meta.json``) into what the CF zoo trains on.

Dense indices are assigned to the users and items that occur in *train* (sorted by id, so the mapping
is deterministic). A valid/test interaction whose user or item never occurs in train cannot be scored
by a CF model: it is dropped from the evaluation targets and counted in ``SplitData.dropped``. So is a
target the user already has in the evaluation mask (a repeat of a train item, or for test of a valid
item), since masked items can never be ranked.

Evaluation masks follow the usual rule: valid ranks against everything but the train items; test ranks
against everything but train + valid. Sequential models read the same known history in time order
(``histories("valid")`` = train sequence; ``histories("test")`` = train + valid events merged by time).

Batch iterators live in :mod:`models.batches` and are re-exported here (``iter_batches``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import scipy.sparse as sp

from models.batches import BATCH_KINDS, NegativeSampler, iter_batches, pad_histories  # noqa: F401 (re-export)
from models.cf.base import TrainData

# The columns this loader reads from a split table (the table's schema is jobs.core.lake.READ_COLUMNS;
# tests/test_data.py checks these are among them).
READ_COLUMNS = ["user_id", "item_id", "rating", "event_ts", "split"]

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
EVAL_SPLITS = ("valid", "test")


@dataclass
class SplitData:
    """A split ready for training and evaluation; user/item indices are positions in ``train.user_ids``."""

    train: TrainData
    valid: dict[int, np.ndarray]  # user index -> unique target item indices
    test: dict[int, np.ndarray]
    valid_mask: sp.csr_matrix  # [n_users, n_items] items excluded when ranking for valid (= train)
    test_mask: sp.csr_matrix  # train + valid
    test_sequences: list[np.ndarray]  # per user, train + valid item indices in time order
    meta: dict = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> reason -> interactions

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def targets(self, split: str) -> dict[int, np.ndarray]:
        return {"valid": self.valid, "test": self.test}[_check_eval_split(split)]

    def mask(self, split: str) -> sp.csr_matrix:
        return {"valid": self.valid_mask, "test": self.test_mask}[_check_eval_split(split)]

    def histories(self, split: str) -> list[np.ndarray]:
        """Per-user known history (time order) a sequential model reads when evaluated on ``split``."""
        return {"valid": self.train.sequences, "test": self.test_sequences}[_check_eval_split(split)]


def _check_eval_split(split: str) -> str:
    if split not in EVAL_SPLITS:
        raise ValueError(f"unknown evaluation split {split!r}; choose one of {list(EVAL_SPLITS)}")
    return split


def read_split_frame(split_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The split table's rows (READ_COLUMNS) and its meta.json; clear errors for anything malformed."""
    split_dir = Path(split_dir)
    meta_path = split_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{split_dir} is not a split table: no meta.json")
    meta = json.loads(meta_path.read_text())
    files = sorted(str(p) for p in split_dir.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"split table {split_dir} has no parquet files")
    # Hive partitioning so a writer may partition by `split`; it is harmless when it did not.
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(split_dir))
    frame = dataset.to_table().to_pandas()
    missing = [c for c in READ_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"split table {split_dir} lacks columns {missing}; expected {READ_COLUMNS}")
    frame = frame[READ_COLUMNS].copy()
    frame["user_id"] = frame["user_id"].astype(str)
    frame["item_id"] = frame["item_id"].astype(str)
    frame["split"] = frame["split"].astype(str)
    unknown = sorted(set(frame["split"].unique()) - set(SPLITS))
    if unknown:
        raise ValueError(f"split table {split_dir} has split values {unknown}; allowed {list(SPLITS)}")
    if not (frame["split"] == "train").any():
        raise ValueError(f"split table {split_dir} has no train rows")
    return frame, meta


def load_split(split_dir: Path) -> SplitData:
    """Read ``split_dir`` (a ``splits/<name>`` table folder) into a :class:`SplitData`."""
    frame, meta = read_split_frame(split_dir)
    # Stable time order: ties keep the table's row order.
    frame = frame.sort_values("event_ts", kind="stable").reset_index(drop=True)
    train_rows = frame[frame["split"] == "train"]
    user_ids = np.unique(train_rows["user_id"].to_numpy())
    item_ids = np.unique(train_rows["item_id"].to_numpy())
    n_users, n_items = len(user_ids), len(item_ids)
    uidx = pd.Index(user_ids).get_indexer(frame["user_id"])
    iidx = pd.Index(item_ids).get_indexer(frame["item_id"])
    split = frame["split"].to_numpy()

    is_train = split == "train"
    train = _binary_csr(uidx[is_train], iidx[is_train], n_users, n_items)
    train_data = TrainData(
        user_ids=user_ids, item_ids=item_ids, train=train,
        sequences=_sequences(uidx[is_train], iidx[is_train], n_users),
    )
    dropped: dict[str, dict[str, int]] = {}
    valid, valid_rows = _targets(uidx, iidx, split == "valid", mask=train, counts=dropped.setdefault("valid", {}))
    test_mask = _binary_csr(
        np.concatenate([uidx[is_train], uidx[valid_rows]]), np.concatenate([iidx[is_train], iidx[valid_rows]]),
        n_users, n_items,
    )
    test, _ = _targets(uidx, iidx, split == "test", mask=test_mask, counts=dropped.setdefault("test", {}))
    known = is_train | valid_rows  # frame is time-sorted, so this keeps time order per user
    data = SplitData(
        train=train_data, valid=valid, test=test, valid_mask=train, test_mask=test_mask,
        test_sequences=_sequences(uidx[known], iidx[known], n_users), meta=meta, dropped=dropped,
    )
    log.info(
        "split %s: %d users, %d items, %d train pairs, %d valid / %d test users; dropped %s",
        meta.get("name", split_dir), n_users, n_items, train.nnz, len(valid), len(test), dropped,
    )
    return data


def _binary_csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _sequences(users: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Per-user item indices, in the (already time-sorted) order of the input."""
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    ordered = items[order].astype(np.int64)
    return [ordered[bounds[u]:bounds[u + 1]] for u in range(n_users)]


def _targets(
    uidx: np.ndarray, iidx: np.ndarray, rows: np.ndarray, *, mask: sp.csr_matrix, counts: dict[str, int]
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Targets per user for the rows selected by ``rows``; returns them and the rows that were kept."""
    unseen_user = rows & (uidx < 0)
    unseen_item = rows & (uidx >= 0) & (iidx < 0)
    usable = rows & (uidx >= 0) & (iidx >= 0)
    in_mask = np.zeros(len(rows), dtype=bool)
    in_mask[usable] = NegativeSampler(mask).contains(uidx[usable].astype(np.int64), iidx[usable].astype(np.int64))
    keep = usable & ~in_mask
    counts.update(
        unseen_user=int(unseen_user.sum()), unseen_item=int(unseen_item.sum()), already_seen=int(in_mask.sum())
    )
    pairs = np.unique(np.stack([uidx[keep], iidx[keep]], axis=1), axis=0)
    bounds = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    targets = {int(chunk[0, 0]): chunk[:, 1].astype(np.int64) for chunk in np.split(pairs, bounds) if len(chunk)}
    return targets, keep
