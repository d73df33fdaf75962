"""The shared LLM-recommender pieces (models/llmrec) on tiny random-weight causal LMs: packed candidate
scoring equals scoring each candidate alone the plain way, soft-prompt slots, LoRA wrapping and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cora_tiny import tiny_llm

from models.llmrec.layout import SOFT_MARK, Codec, pack
from models.llmrec.loading import load_causal_lm, pick_device
from models.llmrec.lora import add_lora, trainable_parameters, with_lora
from models.llmrec.scoring import candidate_scores
from models.llmrec.soft_prompt import SoftPrompt

TITLES = ["The Fugitive (1993)", "The Piano (1993)", "Heat (1995)", "Fargo (1996)", "Twelve Monkeys (1995)"]


def _plain_score(llm, prefix_embeds: torch.Tensor, answer: list[int]) -> float:
    """One candidate alone, the ordinary way: prompt + answer in one causal sequence, no custom mask."""
    embedding = llm.get_input_embeddings()
    embeds = torch.cat([prefix_embeds, embedding(torch.tensor([answer]))], dim=1)
    with torch.no_grad():
        logits = llm(inputs_embeds=embeds).logits[0].float()
    start = prefix_embeds.shape[1]
    log_probs = torch.log_softmax(logits[start - 1:start - 1 + len(answer)], dim=-1)
    return float(log_probs[torch.arange(len(answer)), torch.tensor(answer)].mean())


def _prefix_embeds(llm, codec, prompt: str, soft: torch.Tensor | None) -> torch.Tensor:
    before, after = codec.prefix_ids(prompt)
    embedding = llm.get_input_embeddings()
    parts = [embedding(torch.tensor([before]))]
    if after is not None:
        if soft is not None:
            parts.append(soft.unsqueeze(0))
        parts.append(embedding(torch.tensor([after])))
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_packed_scores_equal_each_candidate_scored_alone(tiny_llama_dir, family):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    llm = tiny_llm(family, vocab_size=len(tokenizer))
    codec = Codec(tokenizer, system="You recommend films.")
    prompts = ["Liked: Heat (1995). What next?", "Liked: Fargo (1996); Heat (1995); The Piano (1993). Next?"]
    candidates = [TITLES[:4], TITLES[1:]]  # rows of different lengths: left padding differs per row
    with torch.no_grad():
        packed = candidate_scores(llm, pack(codec, prompts, candidates))
    for b, (prompt, titles) in enumerate(zip(prompts, candidates, strict=True)):
        alone = [_plain_score(llm, _prefix_embeds(llm, codec, prompt, None), codec.answer_ids(t)) for t in titles]
        assert torch.allclose(packed[b, :len(titles)], torch.tensor(alone), atol=1e-4), (packed[b], alone)
    # "The Fugitive" and "The Piano" share their first token but not their score (no first-token shortcut).
    assert codec.answer_ids(TITLES[0])[0] == codec.answer_ids(TITLES[1])[0]
    assert abs(float(packed[0, 0] - packed[0, 1])) > 1e-4


def test_a_row_with_fewer_candidates_scores_minus_infinity_for_the_missing_ones(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    llm = tiny_llm("llama", vocab_size=len(tokenizer))
    with torch.no_grad():
        scores = candidate_scores(llm, pack(Codec(tokenizer), ["a", "b"], [TITLES[:2], TITLES[:5]]))
    assert scores.shape == (2, 5)
    assert torch.isinf(scores[0, 2:]).all() and torch.isfinite(scores[0, :2]).all() and torch.isfinite(scores[1]).all()


def test_soft_prompt_fills_its_slots_and_gets_gradients(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    llm = tiny_llm("llama", vocab_size=len(tokenizer))
    llm.requires_grad_(False)
    codec = Codec(tokenizer)
    soft = SoftPrompt.from_vocabulary(llm, 3, seed=1)
    prompt = f"The teacher says: {SOFT_MARK} Liked: Heat (1995). Next?"
    batch = pack(codec, [prompt], [TITLES[:3]], n_soft=3)
    assert int(batch.soft_slots.sum()) == 3
    scores = candidate_scores(llm, batch, soft())
    alone = [_plain_score(llm, _prefix_embeds(llm, codec, prompt, soft().detach()), codec.answer_ids(t))
             for t in TITLES[:3]]
    assert torch.allclose(scores[0].detach(), torch.tensor(alone), atol=1e-4)
    torch.nn.functional.cross_entropy(scores, torch.tensor([1])).backward()
    assert soft.vectors.grad is not None and float(soft.vectors.grad.abs().sum()) > 0
    # Without a soft prompt the marker disappears: the same text minus the vectors.
    plain = pack(codec, [prompt], [TITLES[:3]])
    assert not plain.soft_slots.any() and plain.prefix_len == batch.prefix_len - 3
    with pytest.raises(ValueError, match="no soft prompt was given"):
        candidate_scores(llm, batch)
    with pytest.raises(ValueError, match="needs the marker"):
        pack(codec, ["no marker here"], [TITLES[:2]], n_soft=3)


def test_soft_prompt_round_trips_and_checks_its_shape(tmp_path):
    soft = SoftPrompt(4, 8)
    again = SoftPrompt.load(soft.save(tmp_path / "soft.pt"))
    assert torch.equal(again.vectors, soft.vectors) and again.n_tokens == 4
    with pytest.raises(ValueError, match="expected"):
        SoftPrompt(4, 8, init=torch.zeros(3, 8))


def test_lora_starts_as_the_base_model_and_trains_only_the_active_adapter(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    llm = tiny_llm("llama", vocab_size=len(tokenizer))
    batch = pack(Codec(tokenizer), ["Liked: Heat (1995). Next?"], [TITLES[:3]])
    with torch.no_grad():
        base = candidate_scores(llm, batch)
    model = with_lora(llm, name="one", rank=2, alpha=4.0)
    with torch.no_grad():
        assert torch.allclose(candidate_scores(model, batch), base, atol=1e-6)  # B = 0 at the start
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n and ".one." in n for n in names)
    assert all(any(t in n for t in ("q_proj", "v_proj")) for n in names)
    add_lora(model, name="two", rank=2, alpha=4.0)
    names = [n for n, _ in model.named_parameters() if _.requires_grad]
    assert names and all(".two." in n for n in names)
    assert len(trainable_parameters(model)) == len(names)


def test_load_causal_lm_on_cpu(tiny_llama_dir, tmp_path):
    model, tokenizer = load_causal_lm(tiny_llama_dir, device="cpu")
    assert next(model.parameters()).device.type == "cpu" and next(model.parameters()).dtype == torch.float32
    assert not model.training and tokenizer.pad_token_id is not None
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_causal_lm(tmp_path)


def test_warmup_cosine_schedule_by_hand():
    from models.llmrec.fitting import FitConfig, warmup_cosine

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = warmup_cosine(optimizer, 10, 0.2)  # 2 warm-up steps, then 8 of cosine decay
    factors = [schedule.get_last_lr()[0]]
    for _ in range(8):
        optimizer.step()
        schedule.step()
        factors.append(schedule.get_last_lr()[0])
    # warm-up (s + 1) / 2, then 0.5 * (1 + cos(pi * (s - 2) / 8))
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[6] == pytest.approx(0.5) and factors[8] == pytest.approx(0.5 * (1 + np.cos(np.pi * 6 / 8)))
    with pytest.raises(ValueError, match="warmup_ratio"):
        FitConfig(warmup_ratio=1.0)
