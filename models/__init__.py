"""PyTorch side of ktrec: CF zoo (``cf/``), knowledge transfer (``kt``, ``scenario``, ``trainer``), batches and
sequences, LLM generator and embedder backends (``llm/``, ``embed``), CoRA (``cora/``), metrics and the served
pyfunc (``serving``). Imports nothing of the project outside models/: jobs pass it paths and values."""
