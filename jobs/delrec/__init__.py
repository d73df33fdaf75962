"""DELRec (METHODS.md §3): a sequential teacher's patterns distilled into an LLM, as a pipeline stage.

Enters: a leave-one-out split of the lake (``ktrec split --strategy loo``) and the item titles. ``teacher``
trains the teacher (SASRec from the CF zoo, on training prefixes only) and writes its top-10 per user and
cut-off as a lake table; ``data`` builds the prompt table (temporal analysis, pattern simulating,
recommendation) with Spark; ``train`` runs stage 1 (soft prompt), stage 2 (LoRA) and the baselines on the
same candidates; ``score`` scores with a saved model; ``register`` logs and gates ``ktrec-delrec``.
Leaves: ``delrec_teacher/<name>``, ``delrec/<name>``, a run folder, an MLflow version.
"""
