"""CoRA's mechanism on tiny random-weight Llama, Qwen2 and Gemma3 models: identity at init, per-sample
updates equal to merged weights, independence across a batch, hooks always removed, frozen parts
untouched by training, and a loss that falls on a task only the collaborative signal can solve."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from cora_tiny import FAMILIES, tiny_llm, tiny_llm_folder

from models.cora.adapter import find_targets
from models.cora.frozen_cf import FrozenCF
from models.cora.model import CoRA, CoRAConfig, answer_logits
from models.cora.prompt import PromptCodec, render
from models.cora.train import Examples, FitConfig, fit, predict
from models.metrics import auc

CF_DIM = 8
SMALL = CoRAConfig(rank=4, n_queries=4, d_model=16, n_heads=2)


def _cora(family: str, config: CoRAConfig = SMALL) -> CoRA:
    return CoRA(tiny_llm(family), cf_dim=CF_DIM, yes_id=5, no_id=6, config=config)


def _perturb(cora: CoRA, seed: int = 1) -> None:
    """Give the zero-initialised B heads random weights, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in cora.generator.head_b.values():
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.5)


def _inputs(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, width - n:] = torch.randint(3, 90, (n,), generator=gen)
        mask[row, width - n:] = 1
    return ids, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_fresh_adapter_leaves_llm_output_unchanged(family):
    cora = _cora(family)
    ids, mask = _inputs([9, 6])
    u, i = torch.randn(2, CF_DIM), torch.randn(2, CF_DIM)
    full_base = cora.llm(input_ids=ids, attention_mask=mask).logits
    with cora.hooks.applied(cora.generator(u, i)):
        full_adapted = cora.llm(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(full_adapted, full_base, atol=0, rtol=0)
    assert torch.allclose(cora(ids, mask, u, i), cora.base_logits(ids, mask))
    assert len(cora.hooks.targets) == 4 * cora.llm.config.num_hidden_layers


@pytest.mark.parametrize("family", FAMILIES)
def test_per_sample_update_equals_merged_weights(family):
    cora = _cora(family)
    _perturb(cora)
    ids, mask = _inputs([7, 7])
    u, i = torch.randn(2, CF_DIM), torch.randn(2, CF_DIM)
    got = cora(ids, mask, u, i)
    updates = cora.generator(u, i)
    for row in range(2):
        merged = copy.deepcopy(cora.llm)
        with torch.no_grad():
            for name, module in find_targets(merged, SMALL.target_suffixes).items():
                a, b = updates[name]
                module.weight += SMALL.scale * (a[row] @ b[row]).T
        want = answer_logits(merged, ids[row:row + 1], mask[row:row + 1], yes_id=5, no_id=6)
        assert torch.allclose(got[row], want[0], atol=1e-5), (row, got[row], want)
    assert not torch.allclose(got, cora.base_logits(ids, mask), atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_in_a_batch_are_independent(family):
    cora = _cora(family)
    _perturb(cora)
    ids, mask = _inputs([10, 6])
    u, i = torch.randn(2, CF_DIM), torch.randn(2, CF_DIM)
    updates = cora.generator(u, i)
    a, b = next(iter(updates.values()))
    assert not torch.allclose(a[0], a[1]) and not torch.allclose(b[0], b[1])
    batched = cora(ids, mask, u, i)
    for row, n in enumerate([10, 6]):
        alone = cora(ids[row:row + 1, -n:], mask[row:row + 1, -n:], u[row:row + 1], i[row:row + 1])
        assert torch.allclose(batched[row], alone[0], atol=1e-5), (row, batched[row], alone)
    swapped = cora(ids, mask, u.flip(0), i.flip(0))
    assert not torch.allclose(swapped, batched, atol=1e-4)


def test_targets_are_chosen_by_suffix():
    cora = _cora("llama", CoRAConfig(rank=2, n_queries=2, d_model=8, n_heads=2, target_suffixes=["q_proj", "v_proj"]))
    names = list(cora.hooks.targets)
    assert len(names) == 4 and all(n.endswith(("q_proj", "v_proj")) for n in names)
    with pytest.raises(ValueError, match="no nn.Linear"):
        CoRA(tiny_llm("llama"), cf_dim=4, yes_id=5, no_id=6, config=CoRAConfig(target_suffixes=["nope"]))


def _hook_counts(cora: CoRA) -> list[int]:
    return [len(m._forward_hooks) for m in cora.hooks.targets.values()]


def test_hooks_are_removed_after_forward_even_when_it_raises():
    cora = _cora("qwen2")
    _perturb(cora)
    ids, mask = _inputs([5, 5, 5])
    u, i = torch.randn(3, CF_DIM), torch.randn(3, CF_DIM)
    cora(ids, mask, u, i)
    assert _hook_counts(cora) == [0] * len(cora.hooks.targets)
    with pytest.raises(ValueError, match="adapted for 2 samples"):
        cora(ids, mask, u[:2], i[:2])  # the hooks themselves raise mid-forward
    assert _hook_counts(cora) == [0] * len(cora.hooks.targets)

    def boom(*_):
        raise RuntimeError("boom")

    handle = cora.llm.model.norm.register_forward_hook(boom)  # raises after every adapted module ran
    try:
        with pytest.raises(RuntimeError, match="boom"):
            cora(ids, mask, u, i)
    finally:
        handle.remove()
    assert _hook_counts(cora) == [0] * len(cora.hooks.targets)
    assert torch.allclose(cora.llm(input_ids=ids).logits, copy.deepcopy(cora.llm)(input_ids=ids).logits)


def _separable_task(tmp_path, n: int = 48) -> tuple[CoRA, PromptCodec, FrozenCF, Examples]:
    """Identical prompts; the label is the sign of the user's CF embedding's first coordinate."""
    titles = ["Alpha", "Beta", "Gamma"]
    prompts = [render(titles[:2], titles[2])] * n
    folder = tiny_llm_folder(tmp_path / "llm", family="llama", corpus=prompts)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    codec = PromptCodec(AutoTokenizer.from_pretrained(folder), max_length=64)
    llm = AutoModelForCausalLM.from_pretrained(folder)
    gen = torch.Generator().manual_seed(3)
    users = [f"u{k}" for k in range(n)]
    user_table = torch.randn(n, CF_DIM, generator=gen)
    cf = FrozenCF(user_ids=users, item_ids=["t"], user_table=user_table, item_table=torch.ones(1, CF_DIM))
    labels = (user_table[:, 0] > 0).float().numpy()
    examples = Examples(users=users, items=["t"] * n, prompts=prompts, labels=labels)
    cora = CoRA(llm, cf_dim=CF_DIM, yes_id=codec.yes_id, no_id=codec.no_id, config=SMALL)
    return cora, codec, cf, examples


def _scorer(cora: CoRA):
    return lambda b: cora(b["input_ids"], b["attention_mask"], b["user_emb"], b["item_emb"])


def test_training_leaves_llm_and_cf_bitwise_unchanged_and_loss_falls(tmp_path):
    cora, codec, cf, examples = _separable_task(tmp_path)
    llm_before = {k: v.clone() for k, v in cora.llm.state_dict().items()}
    cf_before = (cf.user_table.clone(), cf.item_table.clone())
    gen_before = {k: v.clone() for k, v in cora.generator.state_dict().items()}
    cora.train()
    losses = fit(_scorer(cora), cora.trainable_parameters(), examples, codec=codec, cf=cf,
                 config=FitConfig(epochs=10, batch_size=8, lr=3e-3, seed=0))
    cora.eval()
    assert all(torch.equal(v, llm_before[k]) for k, v in cora.llm.state_dict().items())
    assert not any(p.requires_grad for p in cora.llm.parameters())
    assert torch.equal(cf.user_table, cf_before[0]) and torch.equal(cf.item_table, cf_before[1])
    assert any(not torch.equal(v, gen_before[k]) for k, v in cora.generator.state_dict().items())
    # A tiny random LM bounds |logit(Yes) - logit(No)| (its final RMSNorm and small lm_head), so the loss
    # cannot approach 0; the test is that it falls and that the users become separable (the frozen LLM
    # alone gives every row the same logit: AUC 0.5).
    assert np.mean(losses[-6:]) < np.mean(losses[:6]) - 0.05, losses
    logits = predict(_scorer(cora), examples, codec=codec, cf=cf, batch_size=16)
    assert auc(examples.labels, logits) >= 0.7
    base = predict(lambda b: cora.base_logits(b["input_ids"], b["attention_mask"]), examples, codec=codec,
                   cf=None, batch_size=16)
    assert np.allclose(base, base[0])  # the frozen LLM alone cannot tell the users apart


def test_codec_left_pads_and_finds_single_answer_tokens(tmp_path):
    _, codec, _, _ = _separable_task(tmp_path, n=4)
    batch = codec.encode([render(["Alpha"], "Beta"), render(["Alpha", "Beta", "Gamma"], "Beta")])
    assert batch["attention_mask"][0, 0] == 0 and bool(batch["attention_mask"][:, -1].all())
    assert codec.tokenizer.decode([codec.yes_id]).strip() == "Yes"
    assert codec.tokenizer.decode([codec.no_id]).strip() == "No"
    with pytest.raises(ValueError, match="left-padded"):
        answer_logits(tiny_llm("llama", vocab_size=codec.tokenizer.vocab_size), batch["input_ids"].flip(1),
                      batch["attention_mask"].flip(1), yes_id=codec.yes_id, no_id=codec.no_id)
