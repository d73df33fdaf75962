"""Stage 6, train: a scenario run of one CF model on a split.

Enters: a split table, a training scenario (``conf/``) and, for knowledge transfer, the profile embeddings
read through Feast at the split's cut-off (``profile_targets``). ``scenario_run`` runs the scenario with the
trainer in ``models/``; ``distributed`` runs it on N data-parallel ranks started by Spark's TorchDistributor.
Leaves: one run folder (``run_folder``, its only writer and reader: metrics, per-user metrics, weights, the
scenario as run), published by one rename.
"""

from jobs.train.scenario_run import run

__all__ = ["run"]
