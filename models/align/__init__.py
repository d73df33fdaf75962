"""Recommendation-knowledge alignment (Cao et al., METHODS.md §4): an LLM tuned on natural-language tasks.

Enters: task samples built by jobs/align/data.py (prompt text and answer text per task: masked item modelling,
masked language modelling on item text, BPR in words, retrieval, ranking over candidates, rating) and a local
causal LM. :mod:`.prompts` holds the wording (torch-free, the Spark job renders with it); :mod:`.mixture` draws
a training set from a task mixture under a sample budget; :mod:`.tuning` multi-task LoRA on the answers'
likelihood; :mod:`.catalogue` the item titles as token sequences with the duplicate-title rule and a prefix
trie; :mod:`.retrieve` retrieval over the whole catalogue (trie-constrained beam search, or exhaustive
title-likelihood scoring) returning item ids; :mod:`.evaluate` ranking and rating. Built on models/llmrec.
"""
