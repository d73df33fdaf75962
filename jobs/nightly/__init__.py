"""The nightly pipeline's glue: what the DAG's training, evaluation and promotion tasks call, and the demo.

Enters: the outputs of the stages (a split, run folders, the registry). ``tasks`` trains one model/variant,
logs, gates, registers and promotes it per logical date; ``demo`` runs the whole pipeline end to end on the
embedded defaults (``make demo``) and sets up Airflow for it. Leaves: per-date run folders and decisions under
``$KTREC_HOME/runs/<date>``, MLflow versions and aliases.
"""
