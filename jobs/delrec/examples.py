"""DELRec's three prompt tasks as pure Spark transforms over one row per user.

Input (``base``): ``user_id, n_train, train`` (the user's training events in time order, structs of
``t, item_id, title, title_key``; a title may be null), ``valid``, ``test`` (the leave-one-out items or
null), ``negs`` (sampled unseen items with positions ``r``: jobs/delrec/negatives.py) and ``top`` (the
teacher's predictions after the training sequence, titled, best first, or null). Each builder returns
EXAMPLE_COLUMNS with a ``skip`` reason (null = kept), so the caller counts what it drops:

- ``rec`` per cut-off: train = the last training item after the ones before it; valid = the valid item after
  the training items; test = the test item after training + valid. Candidates: the item + ``n - 1`` sampled.
- ``ta``: one of the last ``ta_window`` training items is shown as ``[hidden]``; the answer is that item among
  itself and ``n - 1`` sampled ones. At least one item follows it, so it is "the item before" that one.
- ``rps`` step ``s``: the teacher's ``s``-th choice, given its first ``s - 1``, among the rest of its top
  ``n // 2`` (its top 10 for 20 candidates) and sampled items that fill the list up to ``n`` (minus the
  ``s - 1`` given).

``ta`` and ``rps`` rows carry cut-off ``train``: their prompts hold training items only (RPS reads the
teacher's predictions after the training sequence, i.e. its ``valid`` cut-off).
History = the titled items of the prefix, latest ``max_history``, oldest first; untitled items are left out
(and counted by the caller). Skip reasons: ``untitled_target``, ``empty_history``, ``short_history``,
``no_teacher_predictions``, ``short_teacher_list``, ``candidate_pool_small``. Each task and cut-off reads its
own range of sampled items, so no two prompts of a user share one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from models.delrec.prompts import HIDDEN

EXAMPLE_COLUMNS = ["user_id", "task", "cutoff", "step", "n_train", "history", "history_keep", "given", "target",
                   "pool", "expected", "skip"]
CUTOFFS = ("train", "valid", "test")


@dataclass(frozen=True)
class Shape:
    n_candidates: int = 20
    max_history: int = 10
    min_history: int = 1
    ta_window: int = 3
    rps_steps: int = 3
    teacher_k: int = 10
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.n_candidates < 2 or self.max_history < 2 or self.min_history < 1 or self.ta_window < 1 \
                or not 1 <= self.rps_steps <= min(self.teacher_k, self.n_candidates // 2):
            raise ValueError(f"need n_candidates >= 2, max_history >= 2, min_history >= 1, ta_window >= 1 and "
                             f"1 <= rps_steps <= min(teacher_k, n_candidates // 2): {self}")

    def negative_range(self, task: str, cutoff: str = "train") -> tuple[int, int]:
        """The positions ``r`` a task / cut-off reads (test first: a short pool starves training, not test)."""
        n = self.n_candidates - 1
        slot = {("rec", "test"): 0, ("rec", "valid"): 1, ("rec", "train"): 2, ("ta", "train"): 3}.get((task, cutoff))
        return (4 * n + 1, 1 << 30) if slot is None else (slot * n + 1, (slot + 1) * n)

    @property
    def need(self) -> int:
        return 4 * (self.n_candidates - 1) + self.n_candidates + self.teacher_k


def _item(x: Column) -> Column:
    return F.struct(x["item_id"].alias("item_id"), x["title"].alias("title"))


def _titles(events: Column) -> Column:
    return F.transform(F.filter(events, lambda x: x["title"].isNotNull()), lambda x: x["title"])


def _latest(titles: Column, n: int) -> Column:
    return F.slice(titles, F.greatest(F.size(titles) - n + 1, F.lit(1)), n)


def _sampled(shape: Shape, task: str, cutoff: str = "train") -> Column:
    lo, hi = shape.negative_range(task, cutoff)
    return F.transform(F.filter("negs", lambda x: (x["r"] >= lo) & (x["r"] <= hi)), _item)


def _row(task: str, cutoff: Column | str, step: Column | int, history: Column, keep: Column | int, given: Column,
         target: Column, pool: Column, expected: Column | int, skip: Column) -> list[Column]:
    lit = lambda v: v if isinstance(v, Column) else F.lit(v)  # noqa: E731
    return [F.col("user_id"), F.lit(task).alias("task"), lit(cutoff).alias("cutoff"), lit(step).alias("step"),
            F.col("n_train"), history.alias("history"), lit(keep).alias("history_keep"), given.alias("given"),
            target.alias("target"), pool.alias("pool"), lit(expected).alias("expected"), skip.alias("skip")]


def _skip(*checks: tuple[Column, str]) -> Column:
    out = F.lit(None).cast("string")
    for condition, reason in reversed(checks):
        out = F.when(condition, F.lit(reason)).otherwise(out)
    return out


def rec(base: DataFrame, shape: Shape, cutoff: str) -> DataFrame:
    """Recommendation examples at ``cutoff`` (train | valid | test)."""
    if cutoff == "train":
        prefix = F.slice("train", 1, F.greatest(F.size("train") - 1, F.lit(0)))
        target = F.when(F.size("train") > 0, F.element_at("train", -1))
    elif cutoff == "valid":
        prefix, target = F.col("train"), F.col("valid")
    else:
        prefix, target = F.concat("train", F.array("valid")), F.col("test")
    rows = base.withColumn("_target", target).where(F.col("_target").isNotNull())
    history = _latest(_titles(prefix), shape.max_history)
    sampled = _sampled(shape, "rec", cutoff)
    skip = _skip((F.col("_target.title").isNull(), "untitled_target"), (F.size(history) == 0, "empty_history"),
                 (F.size(history) < shape.min_history, "short_history"),
                 (F.size(sampled) < shape.n_candidates - 1, "candidate_pool_small"))
    return rows.select(*_row("rec", cutoff, 0, history, 1, F.array().cast("array<string>"), _item(F.col("_target")),
                             F.concat(F.array(_item(F.col("_target"))), sampled), shape.n_candidates, skip))


def ta(base: DataFrame, shape: Shape) -> DataFrame:
    """Temporal analysis: name the hidden one of the last ``ta_window`` training items."""
    titled = F.filter("train", lambda x: x["title"].isNotNull())
    m = F.size(titled)
    window = F.greatest(F.least(F.lit(shape.ta_window), F.lit(shape.max_history - 1), m - 1), F.lit(1))
    j = F.greatest(m - 2 - F.pmod(F.xxhash64("user_id", F.lit(shape.seed), F.lit("ta")), window), F.lit(0)).cast("int")
    titles = F.transform(titled, lambda x: x["title"])
    shown = F.concat(F.slice(titles, 1, j), F.array(F.lit(HIDDEN)),
                     F.slice(titles, j + 2, F.greatest(m - j - 1, F.lit(0))))
    target = _item(F.element_at(titled, j + 1))
    sampled = _sampled(shape, "ta")
    skip = _skip((m < 2, "short_history"), (F.size(sampled) < shape.n_candidates - 1, "candidate_pool_small"))
    return base.select(*_row("ta", "train", 0, _latest(shown, shape.max_history), m - j,
                             F.array().cast("array<string>"), target, F.concat(F.array(target), sampled),
                             shape.n_candidates, skip))


def rps(base: DataFrame, shape: Shape) -> DataFrame:
    """Pattern simulating: the teacher's ``step``-th choice given its earlier ones, for steps 1..rps_steps."""
    empty = F.array().cast("array<struct<item_id:string,title:string,title_key:string>>")
    rows = base.withColumn("_top", F.slice(F.coalesce("top", empty), 1, shape.n_candidates // 2))
    rows = rows.withColumn("_step", F.explode(F.sequence(F.lit(1), F.lit(shape.rps_steps))))
    top, step = F.col("_top"), F.col("_step")
    keys = F.transform(top, lambda x: x["title_key"])
    lo, _ = shape.negative_range("rps")
    fill = F.greatest(F.lit(shape.n_candidates) - F.size(top), F.lit(0))
    sampled = F.slice(F.transform(F.filter("negs", lambda x: (x["r"] >= lo) & ~F.array_contains(keys, x["title_key"])),
                                  _item), 1, fill)
    pool = F.concat(F.transform(F.slice(top, step, F.greatest(F.size(top), F.lit(1))), _item), sampled)
    history = _latest(_titles("train"), shape.max_history)
    expected = F.lit(shape.n_candidates) - step + 1
    skip = _skip((F.size(top) == 0, "no_teacher_predictions"), (F.size(top) < step, "short_teacher_list"),
                 (F.size(history) == 0, "empty_history"), (F.size(pool) < expected, "candidate_pool_small"))
    given = F.transform(F.slice(top, 1, step - 1), lambda x: x["title"])
    return rows.select(*_row("rps", "train", step, history, 1, given, _item(F.element_at(top, step)), pool,
                             expected, skip))


def all_tasks(base: DataFrame, shape: Shape) -> DataFrame:
    parts = [rec(base, shape, c) for c in CUTOFFS] + [ta(base, shape), rps(base, shape)]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out
