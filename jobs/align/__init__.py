"""Recommendation-knowledge alignment (METHODS.md §4, Cao et al.) as a pipeline stage.

Enters: a leave-one-out split of the lake (``ktrec split --strategy loo``) and the item titles / text.
``data`` builds the task samples with Spark (auxiliary: masked item modelling, masked language modelling on
item text, BPR in words; recommendation: retrieval, ranking over candidates, rating) and the catalogue;
``train`` tunes one LoRA adapter per task mixture on a causal LLM and evaluates them with the frozen LLM on
the same test users; ``baselines`` puts the project's SASRec and BPR-MF on the same catalogue and users;
``retrieve`` returns top-k item ids for users; ``register`` logs and gates ``ktrec-align``.
Leaves: ``align/<name>``, ``align_catalogue/<name>``, a run folder, an MLflow version.
"""
