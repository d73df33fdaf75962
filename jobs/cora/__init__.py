"""CoRA (METHODS.md §2): collaborative weights for a frozen LLM, as a pipeline stage.

Enters: a split of the lake and the item titles (``data`` builds the Yes/No prompt table with Spark), a
frozen CF model (``cf``: a ``ktrec train`` run folder, or a fallback BPR-MF) and a local LLM. ``train`` fits the
adapter and its baselines (models/cora), ``score`` scores new pairs, ``register`` logs and gates
``ktrec-cora``. Leaves: the lake table ``cora/<name>``, a run folder with the adapter, an MLflow version.
"""
