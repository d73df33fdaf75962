"""The alignment model side on a tiny random-weight Llama (SmolLM2's tokenizer): retrieval returns catalogue
ids only, never a masked item, duplicate titles by the stated tie rule, beam search agrees with scoring every
title when it keeps every branch; LoRA tuning moves only adapter weights; the mixture budget, the retrieval
metrics and the rating expectation by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.align import prompts as tpl

TITLES = ["Alpha One", "Alpha Two", "Beta Nine", "Twin Film", "Twin Film", "Gamma", "Gamma Ray (1990)"]
IDS = ["a1", "a2", "b9", "t_low", "t_high", "g1", "g2"]
POPULARITY = [3, 3, 1, 1, 5, 2, 0]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from models.align.catalogue import Catalogue
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_causal_lm

    llm, tokenizer = load_causal_lm(tiny_llama_dir, device="cpu")
    codec = Codec(tokenizer, system=tpl.SYSTEM)
    return llm, codec, Catalogue.build(codec, IDS, TITLES, POPULARITY)


def test_catalogue_orders_ties_by_popularity_then_id_and_groups_duplicate_titles(tiny):
    _, codec, catalogue = tiny
    # popularity descending, then id: t_high 5, a1 3, a2 3, g1 2, b9 1, t_low 1, g2 0
    assert catalogue.item_ids == ["t_high", "a1", "a2", "g1", "b9", "t_low", "g2"]
    twin = catalogue.group_of[catalogue.index["t_high"]]
    assert catalogue.group_of[catalogue.index["t_low"]] == twin and len(catalogue.groups) == 6
    assert [catalogue.item_ids[p] for p in catalogue.members[twin]] == ["t_high", "t_low"]
    # "Gamma" is a prefix of "Gamma Ray (1990)": after its tokens both stopping and going on are allowed
    gamma = catalogue.groups[catalogue.group_of[catalogue.index["g1"]]]
    after = catalogue.allowed(gamma[:-1], None, codec.eos_id)
    assert gamma[-1] == codec.eos_id and codec.eos_id in after and len(after) == 2
    with pytest.raises(ValueError, match="unique"):
        type(catalogue).build(codec, ["x", "x"], ["A", "B"], [0, 0])


def test_retrieval_returns_catalogue_ids_never_masked_and_twins_together(tiny):
    from models.align.retrieve import beam_retrieve, score_retrieve

    llm, codec, catalogue = tiny
    prompt = tpl.retrieval(["Alpha One", "Beta Nine"], "")[0]
    masked = {catalogue.index["a1"], catalogue.index["b9"]}
    for retrieve in (score_retrieve, beam_retrieve):
        (top,) = retrieve(llm, codec, catalogue, [prompt], [masked], k=len(catalogue))
        ids = [catalogue.item_ids[p] for p in top]
        assert sorted(ids) == sorted(set(IDS) - {"a1", "b9"})  # every unmasked item once, ids only
        at = ids.index("t_high")
        assert ids[at + 1] == "t_low"  # one title, two items: consecutive, the more popular first
    (top,) = score_retrieve(llm, codec, catalogue, [prompt], [masked | {catalogue.index["t_high"]}], k=3)
    assert "t_high" not in [catalogue.item_ids[p] for p in top]


def test_beam_search_keeping_every_branch_agrees_with_scoring_every_title(tiny):
    from models.align.retrieve import beam_retrieve, score_retrieve

    llm, codec, catalogue = tiny
    prompts = [tpl.retrieval(h, "")[0] for h in (["Gamma"], ["Alpha Two", "Twin Film"])]
    masked = [set(), {catalogue.index["a2"]}]
    exact = score_retrieve(llm, codec, catalogue, prompts, masked, k=4)
    beam = beam_retrieve(llm, codec, catalogue, prompts, masked, k=4, beams=64)
    assert beam == exact


def test_lora_tuning_moves_only_adapter_weights_and_fits(tiny):
    from models.align.systems import AlignConfig, Aligner, generative
    from models.llmrec.tuning import FitConfig

    llm, codec, catalogue = tiny
    base = {k: v.clone() for k, v in llm.state_dict().items()}
    samples = [tpl.retrieval(["Alpha One"], "Beta Nine"), tpl.mim(["Alpha One", "Gamma", "Beta Nine"], [1])]
    examples = generative([p for p, _ in samples], [a for _, a in samples], ["u1", "u2"])
    aligner = Aligner(llm, codec, AlignConfig(rank=2, alpha=4.0, fit=FitConfig(epochs=10, batch_size=2, lr=3e-2,
                                                                               loss="lm")))
    log = aligner.tune("rec_aux", examples)
    model = aligner.model
    assert log["steps"] == 10 and log["loss_last_tenth"] < log["loss_first_tenth"]
    lora = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())  # B starts at zero: it moved
    for key, value in model.state_dict().items():
        if "lora_" not in key:
            assert torch.equal(value, base[key.replace("base_model.model.", "").replace(".base_layer", "")])
    out = aligner.evaluate("rec_aux", catalogue, {"retrieval": ([samples[0][0]], [set()]),
                                                  "rating": [tpl.rating(["Gamma"], [4], "Beta Nine", 3)[0]]})
    assert len(out["top"][0]) == 7 and 1.0 <= out["rating_pred"][0] <= 5.0
    with aligner.active(None) as frozen:  # the adapter switched off gives the base LLM back
        assert frozen is model
    model.unload()


def test_mixture_budget_by_hand():
    import pandas as pd

    from models.align.mixture import draw, quotas

    # shares of 8: a 2, b 2, c 4; b holds 1, so 1 is left -> re-split over a, c (1/3, 2/3): c by largest remainder
    assert quotas({"a": 1, "b": 1, "c": 2}, {"a": 10, "b": 1, "c": 10}, 8) == {"a": 2, "b": 1, "c": 5}
    assert quotas({"a": 1, "b": 0}, {"a": 3, "b": 9}, 8) == {"a": 3}
    frame = pd.DataFrame({"task": ["a"] * 5 + ["c"] * 5, "user_id": [f"u{k}" for k in range(10)]})
    one, two = draw(frame, {"a": 1, "c": 1}, 4, seed=1), draw(frame, {"a": 1, "c": 1}, 4, seed=1)
    assert one.equals(two) and one["task"].value_counts().to_dict() == {"a": 2, "c": 2}


def test_retrieval_metrics_and_rating_by_hand():
    from models.align.systems import expected_rating
    from models.metrics import evaluate_top_lists, rating_errors

    result = evaluate_top_lists([[2, 0], [1], []], np.array([0, 2, 1]), 3, ks=(1, 5))
    assert result.protocol == "full"
    assert result.per_user["ndcg_at_5"] == pytest.approx([1 / np.log2(3), 0.0, 0.0])
    assert result.per_user["recall_at_5"].tolist() == [1.0, 0.0, 0.0]
    assert result.per_user["recall_at_1"].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="repeats"):
        evaluate_top_lists([[1, 1]], np.array([0]), 3)
    errors = rating_errors(np.array([3.0, 5.0]), np.array([4.0, 5.0]))
    assert errors["rmse"] == pytest.approx(np.sqrt(0.5)) and errors["mae"] == pytest.approx(0.5)
    # equal scores for all five digits -> the mean of 1..5; all mass on "4" -> 4
    assert expected_rating(np.array([[0.0] * 5, [-50, -50, -50, 0, -50]])) == pytest.approx([3.0, 4.0])
