"""PyTorch side of ktrec: CF zoo, knowledge transfer, CoRA, LLM generator and embedder backends, metrics."""
