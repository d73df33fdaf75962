"""DELRec (METHODS.md §3): distil a sequential recommender's patterns into a soft prompt, then tune the LLM.

Enters: prompt examples built by jobs/delrec/data.py (titles of a user's history, candidate titles, the index
of the right one) and a local causal LM. :mod:`.prompts` holds the project's prompt wording (the Spark job
and the trainer render the same text) and the truncation rule; :mod:`.weighting` the dynamic task weights of
stage 1; :mod:`.stages` the two training stages and scoring; :mod:`.systems` DELRec and its LLM baselines in
turn on one loaded LLM; :mod:`.teacher` the CF teacher's top-k and candidate scores; :mod:`.io` the saved soft
prompt + LoRA folder. Leaves: per-candidate scores, a trained soft prompt and LoRA adapter. Built on
models/llmrec.
"""
