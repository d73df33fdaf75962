"""Stage 3, split: the lake's interactions in, a train/valid/test split table out.

Enters: ``interactions`` up to a cut-off. ``strategies`` holds the Spark expressions of each strategy
(leave-one-out, temporal, random; optional k-core and rating filters), ``table`` runs one and publishes it.
Leaves: the lake table ``splits/<name>`` (``SPLIT_COLUMNS`` plus a ``meta.json`` with the strategy, seed,
cut-off timestamps and counts) that the trainers read.
"""

from jobs.split.table import run

__all__ = ["run"]
