"""CoRA (collaborative LoRA): a frozen CF model's user/item embeddings steer a frozen LLM through
per-sample low-rank weight updates. generator.py (queries → updates), adapter.py (hooks), model.py
(Yes/No scoring), prompt.py (text template, tokenisation), frozen_cf.py (CF embeddings), train.py (loops)."""
