"""Every zoo model overfits a tiny dataset, scores consistently, exposes its hook points; build_model checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.batches import iter_batches, pad_histories
from models.cf import MODELS, build_model
from models.cf.base import TrainData

N_USERS, N_ITEMS, PER_USER = 20, 30, 6
# Small but quick-to-fit configs; lr per model.
SETTINGS = {
    "bpr": ({"embedding_dim": 16}, 0.05),
    "neumf": ({"embedding_dim": 16, "mlp_hidden": [32, 16], "dropout": 0.0}, 0.01),
    "lightgcn": ({"embedding_dim": 16, "n_layers": 2}, 0.05),
    "multvae": ({"hidden_dim": 64, "latent_dim": 16, "dropout": 0.0, "total_anneal_steps": 1000}, 0.01),
    "simplex": ({"embedding_dim": 16, "n_negatives": 20, "dropout": 0.0}, 0.02),
    "sasrec": ({"embedding_dim": 16, "max_len": 8, "n_heads": 2, "inner_dim": 32, "dropout": 0.0}, 0.01),
}
# (module, width) that must carry the user-side representation [B, width] in calculate_loss.
USER_HOOKS = {
    "bpr": ("user_embedding", 16), "neumf": ("user_out", 32), "lightgcn": ("user_out", 16),
    "multvae": ("encoder", 64), "simplex": ("user_out", 16), "sasrec": ("seq_out", 16),
}


# Loss after training / loss at start must fall below this. Mult-VAE's multinomial NLL cannot fall far:
# its floor is the entropy of a user's 6-item row, 6·ln 6 ≈ 10.8, against 6·ln 30 ≈ 20.4 at the start.
LOSS_RATIO = {"multvae": 0.7}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The test machine is shared: one intra-op thread avoids oversubscription (10x faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_data(seed: int = 0) -> TrainData:
    """20 users x 30 items; each user's sequence walks consecutive items, so the next item is learnable."""
    rng = np.random.default_rng(seed)
    starts = rng.choice(N_ITEMS, N_USERS, replace=False)
    sequences = [(start + np.arange(PER_USER)) % N_ITEMS for start in starts]
    rows = np.repeat(np.arange(N_USERS), PER_USER)
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.concatenate(sequences))), shape=(N_USERS, N_ITEMS))
    return TrainData(np.arange(N_USERS).astype(str), np.arange(N_ITEMS).astype(str), train, sequences)


def fit(name: str, data: TrainData, steps: int = 300) -> tuple[torch.nn.Module, list[float]]:
    torch.manual_seed(0)
    config, lr = SETTINGS[name]
    model = build_model(name, data.n_users, data.n_items, **config)
    model.setup(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses, epoch = [], 0
    while len(losses) < steps:
        for batch in iter_batches(data, kind=model.batch_kind, batch_size=32, n_negatives=model.n_negatives,
                                  max_len=model.max_len, seed=1, epoch=epoch):
            optimizer.zero_grad()
            loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epoch += 1
    return model.eval(), losses


def score_all(model, data: TrainData) -> torch.Tensor:
    batch = {"user": torch.arange(data.n_users)}
    if model.sequential:
        batch["history"], batch["history_len"] = pad_histories(data.sequences, np.arange(data.n_users), model.max_len)
    with torch.no_grad():
        return model.full_sort_predict(batch)


@pytest.fixture(scope="module")
def data() -> TrainData:
    return tiny_data()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: fit(name, data) for name in MODELS}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_overfits_tiny_data(name, data, fitted):
    model, losses = fitted[name]
    ratio = np.mean(losses[-20:]) / np.mean(losses[:5])
    assert ratio < LOSS_RATIO.get(name, 0.2), f"{name} loss did not fall: {losses[:5]} -> {losses[-5:]}"
    scores = score_all(model, data).numpy()
    positives = data.train.toarray() > 0
    if model.sequential:
        # the item following each user's last training item is the top-scored item
        last = np.array([s[-1] for s in data.sequences])
        assert (scores.argmax(1) == (last + 1) % N_ITEMS).mean() >= 0.8
        return
    # each user's held-in positives rank above all of its negatives (per-user AUC on train)
    aucs = [(scores[u][positives[u]][:, None] > scores[u][~positives[u]][None, :]).mean() for u in range(N_USERS)]
    assert np.mean(aucs) > 0.95, f"{name} mean train AUC {np.mean(aucs):.3f}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_full_sort_agrees_with_predict(name, data, fitted):
    model, _ = fitted[name]
    rng = np.random.default_rng(1)
    users = torch.from_numpy(rng.integers(0, N_USERS, 25))
    items = torch.from_numpy(rng.integers(0, N_ITEMS, 25))
    batch = {"user": users, "pos_item": items}
    if model.sequential:
        batch["history"], batch["history_len"] = pad_histories(data.sequences, users.numpy(), model.max_len)
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        pairs = model.predict(batch)
    assert full.shape == (25, N_ITEMS)
    torch.testing.assert_close(full[torch.arange(25), items], pairs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_documented_user_hook_captures_batch_rows(name, data):
    model = build_model(name, data.n_users, data.n_items, **SETTINGS[name][0])
    model.setup(data)
    module_name, width = USER_HOOKS[name]
    captured = []
    handle = dict(model.named_modules())[module_name].register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        batch = next(iter_batches(data, kind=model.batch_kind, batch_size=8, n_negatives=model.n_negatives,
                                  max_len=model.max_len))
        model.calculate_loss(batch)
    finally:
        handle.remove()
    expected = (8, model.max_len, width) if model.sequential else (8, width)  # SASRec: every position
    assert len(captured) == 1 and captured[0].shape == expected
    assert "user_out" in dict(model.named_modules())


@pytest.mark.parametrize("name", ["lightgcn", "multvae", "simplex"])
def test_models_needing_setup_say_so(name):
    model = build_model(name, N_USERS, N_ITEMS)
    with pytest.raises(RuntimeError, match="setup"):
        model.full_sort_predict({"user": torch.arange(3)})


def test_sasrec_ignores_left_padding():
    model = build_model("sasrec", 5, 10, embedding_dim=16, max_len=8, inner_dim=32).eval()
    padded = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(
            model.full_sort_predict({"history": padded}), model.full_sort_predict({"history": padded[:, 2:]})
        )


def test_build_model_rejects_bad_names_and_configs():
    zoo = r"\['bpr', 'lightgcn', 'multvae', 'neumf', 'sasrec', 'simplex'\]"
    with pytest.raises(ValueError, match=f"choose one of {zoo}"):
        build_model("itemknn", 5, 5)
    with pytest.raises(ValueError, match=r"unknown config keys \['dim'\].*valid keys: \['embedding_dim'"):
        build_model("bpr", 5, 5, dim=8)
    with pytest.raises(ValueError, match="embedding_dim must be > 0"):
        build_model("lightgcn", 5, 5, embedding_dim=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        build_model("sasrec", 5, 5, loss="softmax")
    assert build_model("bpr", 5, 5).config.embedding_dim == 64
