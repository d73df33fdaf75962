"""Knowledge transfer through forward hooks (models.kt) on tiny toy models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kt_toys import ToyGraph, ToyMF, toy_profiles, toy_train

from models.kt import KnowledgeTransfer, ProfileTargets, align_profiles, layer_width, probe_output, reduce_profiles

N_USERS, N_ITEMS = 30, 40


def _batch(n: int = 12, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"user": torch.randint(0, N_USERS, (n,), generator=g),
            "pos_item": torch.randint(0, N_ITEMS, (n,), generator=g),
            "neg_item": torch.randint(0, N_ITEMS, (n,), generator=g)}


def _mf() -> ToyMF:
    torch.manual_seed(0)
    return ToyMF(N_USERS, N_ITEMS, embedding_size=8)


def _graph() -> ToyGraph:
    torch.manual_seed(0)
    model = ToyGraph(N_USERS, N_ITEMS, embedding_size=8)
    model.setup(toy_train(N_USERS, N_ITEMS))
    return model


def _rmse(pred, target):
    return torch.sqrt(F.mse_loss(pred, target) + 1e-12)


@pytest.mark.parametrize("layer", ["user_embedding", "head"])
def test_probe_and_loss_capture_exactly_the_named_module(layer):
    model, batch = _mf(), _batch()
    manual = model.user_embedding(batch["user"])
    manual = model.head(manual) if layer == "head" else manual
    (captured,) = probe_output(model, layer, batch)
    assert torch.equal(captured, manual)
    targets = toy_profiles(N_USERS)
    with KnowledgeTransfer(model, layer=layer, side="user", targets=targets, width=8, alpha=0.3) as kt:
        total, rec, aux = kt.loss(batch)
        expected = _rmse(kt.projection(manual), targets.embeddings[batch["user"]])
    assert torch.allclose(aux, expected)
    assert torch.allclose(rec, model.calculate_loss(batch))
    assert torch.allclose(total, 0.7 * rec + 0.3 * aux)


def test_item_side_embedding_uses_every_id_it_was_called_with():
    model, batch = _mf(), _batch()
    targets = toy_profiles(N_ITEMS, dim=8)
    with KnowledgeTransfer(model, layer="item_embedding", side="item", targets=targets, width=8, loss="cosine",
                           project=False) as kt:
        _, _, aux = kt.loss(batch)
    ids = torch.cat([batch["pos_item"], batch["neg_item"]])
    expected = (1 - F.cosine_similarity(model.item_embedding(ids), targets.embeddings[ids], dim=-1)).mean()
    assert torch.allclose(aux, expected)


def test_full_table_output_is_indexed_by_the_batch_ids():
    model, batch = _graph(), _batch()
    users_all, _ = model.propagate(model.user_embedding.weight, model.item_embedding.weight)
    assert users_all.shape[0] == N_USERS
    targets = toy_profiles(N_USERS, dim=8)
    with KnowledgeTransfer(model, layer="propagate", side="user", targets=targets, width=8, output=0,
                           project=False) as kt:
        _, _, aux = kt.loss(batch)
    assert torch.allclose(aux, _rmse(users_all[batch["user"]], targets.embeddings[batch["user"]]))


def test_entities_without_a_profile_are_left_out():
    model, batch = _mf(), _batch()
    full = toy_profiles(N_USERS, dim=8)
    mask = torch.zeros(N_USERS, dtype=torch.bool)
    mask[batch["user"][:3]] = True
    with KnowledgeTransfer(model, layer="user_embedding", side="user", targets=ProfileTargets(full.embeddings, mask),
                           width=8, project=False) as kt:
        _, _, aux = kt.loss(batch)
    keep = mask[batch["user"]]
    rows = model.user_embedding(batch["user"])[keep]
    assert torch.allclose(aux, _rmse(rows, full.embeddings[batch["user"]][keep]))


def test_kt_loss_falls_while_training():
    model, targets = _mf(), toy_profiles(N_USERS)
    kt = KnowledgeTransfer(model, layer="user_embedding", side="user", targets=targets, width=8, alpha=0.5)
    optimizer = torch.optim.Adam([*model.parameters(), *kt.parameters()], lr=0.05)
    losses = []
    try:
        for step in range(60):
            optimizer.zero_grad()
            total, _, aux = kt.loss(_batch(seed=step))
            total.backward()
            optimizer.step()
            losses.append(aux.item())
    finally:
        kt.remove()
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize("how", ["remove", "context", "exception"])
def test_after_removal_the_model_is_the_plain_model(how):
    model, batch = _mf(), _batch()
    before = model.full_sort_predict(batch).detach().clone()
    targets = toy_profiles(N_USERS)
    kt = KnowledgeTransfer(model, layer="user_embedding", side="user", targets=targets, width=8)
    assert len(model.user_embedding._forward_hooks) == 1
    if how == "remove":
        kt.loss(batch)
        kt.remove()
    elif how == "context":
        with kt:
            kt.loss(batch)
    else:
        with pytest.raises(KeyError):
            with kt:
                kt.loss({"user": batch["user"]})  # calculate_loss fails: no pos_item
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    assert torch.equal(model.full_sort_predict(batch), before)
    assert not any(p is q for p in kt.parameters() for q in model.parameters())
    with pytest.raises(RuntimeError, match="removed"):
        kt.loss(batch)


def test_hook_records_nothing_outside_the_loss():
    model, batch = _mf(), _batch()
    with KnowledgeTransfer(model, layer="user_embedding", side="user", targets=toy_profiles(N_USERS), width=8) as kt:
        model.full_sort_predict(batch)
        with pytest.raises(RuntimeError, match="did not run"):
            kt.transfer_loss(batch)


def test_errors_say_what_to_do():
    graph, batch = _graph(), _batch()
    with pytest.raises(ValueError, match="tuple of 2; set `output`"):
        layer_width(graph, "propagate", batch)
    assert layer_width(graph, "propagate", batch, output=1) == 8
    with pytest.raises(ValueError, match="dimension|reduce_dim"):
        KnowledgeTransfer(_mf(), layer="user_embedding", side="user", targets=toy_profiles(N_USERS, dim=16),
                          width=8, project=False)
    square = _batch(n=N_USERS)
    with KnowledgeTransfer(graph, layer="propagate", side="user", targets=toy_profiles(N_USERS), width=8,
                           output=0) as kt:
        with pytest.raises(ValueError, match="set index to 'table' or 'batch'"):
            kt.loss(square)


def test_align_and_reduce_profiles():
    ids = ["u0", "u1", "u2", "u3", "u4"]
    vectors = {f"u{i}": [float(i), float(i * i), 1.0, -float(i)] for i in (0, 1, 2, 4)}
    aligned = align_profiles(ids, vectors)
    assert aligned.mask.tolist() == [True, True, True, False, True]
    assert aligned.embeddings[4].tolist() == [4.0, 16.0, 1.0, -4.0]
    reduced = reduce_profiles(aligned, dim=2)
    assert reduced.dim == 2 and reduced.embeddings[3].abs().sum() == 0
    assert torch.allclose(reduced.embeddings[aligned.mask].mean(0), torch.zeros(2), atol=1e-5)
    with pytest.raises(ValueError, match="cannot reduce"):
        reduce_profiles(aligned, dim=5)
