"""A three-user lake for the alignment tests, small enough to work every sample out by hand.

- ``ua``: an untitled item first, then a1, a2, b9, d2 (train), a4 (valid), a5 (test);
- ``ub``: b1, d1, b2, a4, a5, b3 (train), b9 (valid), d2 (test); d1 and d2 share the title "Twin Film", so d1
  (a training event with the held-out test title) must be left out of ub's training samples; b3's title is
  longer than the 24-character limit the tests use and is cut to "Beta Three Deluxe...";
- ``uc``: c1, c2 only (fewer than 3 interactions: all train, no valid/test).
Every held-out item also occurs in someone's training rows (the split drops cold ones).
"""

from __future__ import annotations

from datetime import datetime

T0 = datetime(2023, 3, 1)
TITLES = {"x0": None, "a1": "Alpha One", "a2": "Alpha Two", "a4": "Alpha Four", "a5": "Alpha Five",
          "b1": "Beta One", "b2": "Beta Two", "b3": "Beta Three Deluxe Edition With Extras", "b9": "Beta Nine",
          "d1": "Twin Film", "d2": "Twin Film", "c1": "Gamma One", "c2": "Gamma Two"}
CUT_B3 = "Beta Three Deluxe..."
EVENTS = [("ua", "x0", 3.0, 0), ("ua", "a1", 4.0, 1), ("ua", "a2", 5.0, 2), ("ua", "b9", 2.0, 3),
          ("ua", "d2", 4.0, 4), ("ua", "a4", 3.0, 5), ("ua", "a5", 5.0, 6),
          ("ub", "b1", 4.0, 1), ("ub", "d1", 1.0, 2), ("ub", "b2", 3.0, 3), ("ub", "a4", 4.0, 4),
          ("ub", "a5", 5.0, 5), ("ub", "b3", 2.0, 6), ("ub", "b9", 4.0, 7), ("ub", "d2", 3.0, 8),
          ("uc", "c1", 4.0, 1), ("uc", "c2", 2.0, 2)]
MAX_TITLE_CHARS = 24


def build(spark, settings, *, seed: int = 2024, name: str = "tiny", n_candidates: int = 2) -> dict:
    from cora_tiny import write_tiny_lake

    from jobs.align import data
    from jobs.split.table import run as split

    write_tiny_lake(spark, settings, events=EVENTS, titles=TITLES, t0=T0)
    split(settings, strategy="loo", name="tiny")
    return data.run(settings, split="tiny", name=name, seed=seed, n_candidates=n_candidates, max_history=3,
                    max_title_chars=MAX_TITLE_CHARS, spark=spark)
