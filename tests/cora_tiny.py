"""Tiny random-weight causal LMs (Llama, Qwen2, Gemma3) and a word-level tokenizer, built locally for tests."""

from __future__ import annotations

from pathlib import Path

import torch

FAMILIES = ("llama", "qwen2", "gemma3")
SIZES = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256)


def tiny_llm(family: str, *, vocab_size: int = 97, seed: int = 0):
    """A freshly initialised tiny causal LM of ``family`` (eval mode, fp32)."""
    import transformers as tf

    torch.manual_seed(seed)
    if family == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=vocab_size, **SIZES))
    elif family == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(vocab_size=vocab_size, **SIZES))
    elif family == "gemma3":
        config = tf.Gemma3TextConfig(vocab_size=vocab_size, head_dim=8, sliding_window=16, **SIZES)
        model = tf.Gemma3ForCausalLM(config)
    else:
        raise ValueError(family)
    return model.eval()


def tiny_llm_folder(folder: Path, *, family: str = "llama", corpus: list[str], seed: int = 0) -> Path:
    """Save a tiny model plus a word-level tokenizer trained on ``corpus`` as a plain HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"], min_frequency=1)
    tok.train_from_iterator(list(corpus) + ["Yes No"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")
    model = tiny_llm(family, vocab_size=tok.get_vocab_size(), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_tiny_lake(spark, settings, *, events, titles: dict, t0) -> None:
    """Publish ``interactions`` from (user, item, rating, day) tuples and ``items`` from id -> title."""
    from datetime import timedelta

    from jobs.core import lake
    rows = [(u, i, float(r), t0 + timedelta(days=d), "test", False, (t0 + timedelta(days=d)).date())
            for u, i, r, d in events]
    staged = lake.staging_dir(settings, lake.INTERACTIONS)
    spark.createDataFrame(rows, lake.INTERACTIONS_SCHEMA).write.partitionBy("event_date").parquet(str(staged))
    lake.publish(settings, lake.INTERACTIONS, staged)
    staged = lake.staging_dir(settings, lake.ITEMS)
    spark.createDataFrame([(i, t, None, None, None, None, None) for i, t in titles.items()],
                          lake.ITEMS_SCHEMA).write.parquet(str(staged))
    lake.publish(settings, lake.ITEMS, staged)
