"""DELRec's model side (models/delrec) on a tiny random-weight LLM: stage 1 leaves the LLM bit-identical and
moves only the soft prompt, with gradient-norm weights; stage 2 tunes only LoRA; the saved folder scores the
same; the truncation rule and the weights by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.delrec import prompts
from models.delrec.stages import Examples, FitConfig, distill, score, tune
from models.delrec.weighting import GradNormWeights

TITLES = [f"Film {k} ({1990 + k})" for k in range(12)]


def _examples(task: str, n: int, seed: int) -> Examples:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        picked = list(rng.choice(TITLES, size=6, replace=False))
        history, candidates = picked[:2], picked[2:]
        rows.append((prompts.render(task, teacher="SASRec", history=history, candidates=candidates), candidates,
                     int(rng.integers(len(candidates)))))
    return Examples(prompts=[r[0] for r in rows], candidates=[r[1] for r in rows],
                    targets=np.array([r[2] for r in rows]), users=[f"u{k}" for k in range(n)])


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_causal_lm

    llm, tokenizer = load_causal_lm(tiny_llama_dir, device="cpu")
    return llm, Codec(tokenizer, system=prompts.SYSTEM)


def test_stage1_trains_only_the_soft_prompt_and_leaves_the_llm_bit_identical(tiny):
    from models.llmrec.soft_prompt import SoftPrompt

    llm, codec = tiny
    before = {k: v.clone() for k, v in llm.state_dict().items()}
    soft = SoftPrompt.from_vocabulary(llm, 4, seed=0)
    start = soft.vectors.detach().clone()
    log = distill(llm, codec, soft, {"ta": _examples("ta", 6, 0), "rps": _examples("rps", 3, 1)},
                  FitConfig(epochs=1, batch_size=2, lr=5e-2))
    assert all(torch.equal(v, before[k]) for k, v in llm.state_dict().items())
    assert not torch.equal(soft.vectors.detach(), start)
    # 6 TA examples in batches of 2 = 3 steps; the 3 RPS examples cycle to fill them.
    assert len(log["ta_loss"]) == len(log["rps_loss"]) == len(log["ta_weight"]) == 3
    assert all(abs(a + b - 1) < 1e-4 and a > 0 and b > 0 for a, b in zip(log["ta_weight"], log["rps_weight"],
                                                                          strict=True))
    with pytest.raises(ValueError, match="at least one distilling task"):
        distill(llm, codec, soft, {"ta": _examples("ta", 0, 0)}, FitConfig())


def test_stage2_tunes_only_lora_with_the_soft_prompt_frozen_and_learns(tiny, tmp_path):
    from models.delrec import io
    from models.llmrec.lora import trainable_parameters, with_lora
    from models.llmrec.soft_prompt import SoftPrompt

    llm, codec = tiny
    base = {k: v.clone() for k, v in llm.state_dict().items()}
    soft = SoftPrompt.from_vocabulary(llm, 4, seed=0)
    frozen = soft.vectors.detach().clone()
    rec = _examples("rec", 4, 2)
    torch.manual_seed(0)
    model = with_lora(llm, rank=4, alpha=8.0)
    first = score(model, codec, rec, soft=soft.vectors)
    losses = tune(model, codec, trainable_parameters(model), rec, FitConfig(epochs=12, batch_size=4, lr=2e-2),
                  soft=soft.vectors)
    assert len(losses) == 12 and np.mean(losses[-3:]) < losses[0]  # it fits four examples
    assert torch.equal(soft.vectors.detach(), frozen)
    lora_keys = [k for k in model.state_dict() if "lora_" in k]
    assert lora_keys and all(torch.equal(v, base[k.replace("base_model.model.", "").replace(".base_layer", "")])
                             for k, v in model.state_dict().items() if "lora_" not in k)
    trained = score(model, codec, rec, soft=soft.vectors)
    assert not np.allclose(trained, first)
    hits = (trained.argmax(1) == rec.targets).mean()
    assert hits >= (first.argmax(1) == rec.targets).mean()

    folder = io.save(tmp_path / "delrec", model=model, soft=soft, adapter="default",
                     config={"llm": str(codec.tokenizer.name_or_path), "chat": codec.chat, "system": codec.system})
    again = io.load(folder, device="cpu").score(rec.prompts, rec.candidates)
    assert np.allclose(again, trained, atol=1e-5)
    model.unload()  # the module-scoped LLM goes back without adapters


def test_fewer_candidates_score_minus_infinity_and_targets_are_checked(tiny):
    llm, codec = tiny
    rec = _examples("rec", 2, 3)
    rec.candidates[0] = rec.candidates[0][:2]
    rec.targets[0] = 1
    scores = score(llm, codec, Examples(rec.prompts, rec.candidates, rec.targets, rec.users))
    assert scores.shape == (2, 4) and np.isinf(scores[0, 2:]).all() and np.isfinite(scores[1]).all()
    with pytest.raises(ValueError, match="index its example's candidates"):
        Examples(rec.prompts, rec.candidates, np.array([3, 0]), rec.users)


def test_gradient_norm_weights_by_hand():
    weights = GradNormWeights(["ta", "rps"], momentum=0.5)
    w = weights.update({"ta": torch.tensor([3.0, 4.0]), "rps": torch.tensor([50.0])})  # norms 5 and 50
    assert w["ta"] == pytest.approx(10 / 11) and w["rps"] == pytest.approx(1 / 11)
    combined, w = weights.combine({"ta": torch.tensor([0.0, 15.0]), "rps": torch.tensor([50.0])})
    # averages: ta 0.5 * 5 + 0.5 * 15 = 10, rps 50 -> weights 5/6, 1/6
    assert w["ta"] == pytest.approx(5 / 6) and w["rps"] == pytest.approx(1 / 6)
    assert torch.allclose(combined, torch.tensor([50 / 6, 15 * 5 / 6 + 50 / 6]))
    assert weights.update({"ta": torch.tensor([1.0])}) == {"ta": 1.0}
    with pytest.raises(ValueError, match="unknown task"):
        weights.update({"mlm": torch.tensor([1.0])})


def test_truncation_drops_oldest_titles_and_keeps_the_tail():
    history = ["a", "b", "c", "d", "e"]
    assert prompts.fit_history(lambda h: len(h) <= 2, history, keep=1) == 3
    assert prompts.fit_history(lambda h: len(h) <= 2, history, keep=3) is None
    assert prompts.fit_history(lambda h: True, history, keep=1) == 0
    assert prompts.fit_history(lambda h: h == [], [], keep=1) == 0


def test_render_names_the_teacher_and_holds_one_soft_marker():
    text = prompts.render("rps", teacher="SASRec", history=["A (1990)", "B (1991)"], candidates=["C", "D"],
                          given=["C"])
    assert text.count(prompts.SOFT_MARK) == 1 and "SASRec ranked these first: C." in text
    assert text.endswith("Candidates:\nC\nD\nAnswer with the title of one candidate.")
    assert "A (1990); B (1991)" in text
    with pytest.raises(ValueError, match="unknown DELRec task"):
        prompts.render("mlm", teacher="x", history=[], candidates=["C"])
