"""Stage 7, registry: training runs in, registered and promoted models out.

Enters: run folders (``jobs.train.run_folder``) or method summaries. ``tracking`` logs a run to MLflow and
registers its model as the ``challenger`` of ``ktrec-<model>``; ``artifacts`` writes what a run carries (params,
the lake versions it read, the top-k pyfunc); ``plots`` draws its curves; ``gate`` is the one promotion gate
(a challenger becomes ``champion`` only if it beats the champion and its baseline on the same test split),
re-scoring champions through ``offline_eval``. Leaves: MLflow runs, model versions and aliases.
"""
