"""A tiny lake for the DELRec tests: 12 regular users, a one-event user, a three-event user, an untitled item,
a duplicated title; split leave-one-out, a quickly trained SASRec teacher and the prompt table."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from cora_tiny import write_tiny_lake

T0 = datetime(2022, 5, 1)
N_ITEMS = 40
UNTITLED = "i39"  # an item without a title
TWIN = ("i37", "i38")  # two catalogue entries with one title
TITLES = {f"i{k}": f"Film {k} ({1960 + k})" for k in range(N_ITEMS)} | {UNTITLED: None} \
    | {t: "Twin Film (1999)" for t in TWIN}
ONE_EVENT, THREE_EVENTS, UNTITLED_TEST = "u_one", "u_three", "u_untitled"


def events(seed: int = 0) -> list[tuple]:
    """(user, item, rating, day) rows; two taste groups so the teacher has a pattern to learn."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(12):
        group = [k for k in range(36) if k % 2 == u % 2]
        for day, item in enumerate(rng.choice(group, size=9, replace=False)):
            rows.append((f"u{u}", f"i{item}", 4.0, day * 2 + u % 2))
    rows.append(("u0", UNTITLED, 4.0, 30))  # an untitled item in u0's history...
    rows += [("u0", "i1", 3.0, 31), ("u0", "i3", 3.0, 32)]  # ...followed by two more so it stays in train
    rows.append(("u1", TWIN[0], 5.0, 0))  # u1 saw one twin: the other must never be its candidate
    rows.append((ONE_EVENT, "i2", 4.0, 5))
    rows += [(THREE_EVENTS, "i4", 4.0, 1), (THREE_EVENTS, "i6", 4.0, 2), (THREE_EVENTS, "i8", 4.0, 3)]
    rows += [(UNTITLED_TEST, "i5", 4.0, 1), (UNTITLED_TEST, "i7", 4.0, 2), (UNTITLED_TEST, UNTITLED, 4.0, 40)]
    return rows


def build(spark, settings, *, n_candidates: int = 6, max_history: int = 4, teacher_epochs: int = 2,
          rows: list[tuple] | None = None, **data_args) -> dict:
    """Lake -> loo split -> teacher -> prompt table, all named ``tiny``; returns the data job's summary."""
    from jobs.delrec import data, teacher
    from jobs.split.table import run as split

    write_tiny_lake(spark, settings, events=rows or events(), titles=TITLES, t0=T0)
    split(settings, strategy="loo", name="tiny")
    teacher.run(settings, split="tiny", epochs=teacher_epochs, seed=0, spark=spark)
    return data.run(settings, split="tiny", n_candidates=n_candidates, max_history=max_history, spark=spark,
                    **data_args)
