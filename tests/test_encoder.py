"""Interest encoder on tiny synthetic data with a planted signal: users click ads of the category
they browse most, so only a model that reads the sequence can rank clicks above non-clicks."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ml.encoder import EncoderConfig, FittedEncoder, fit_interest_encoder
from ml.encoder.device import resolve_device
from ml.encoder.loop import train_with_early_stopping
from ml.encoder.model import InterestEncoder, ModelSizes
from ml.encoder.next_item import (
    TrainingWindows, fit_next_item, hit_and_ndcg_at_k, left_align, lr_multiplier, rank_targets, training_windows,
)
from ml.encoder.sequences import EventIndex
from ml.encoder.vocab import ITEM_NAMESPACE, hash_ids

START = pd.Timestamp("2026-11-01")
N_CATEGORIES, N_ADS = 6, 30
VALIDATION_DATE = dt.date(2026, 11, 6)
SMALL = EncoderConfig(max_len=12, d_model=32, n_heads=2, n_layers=1, dropout=0.0, batch_size=128, lr=3e-3,
                      max_epochs=10, patience=3, seed=7, device="cpu", item_buckets=4096,
                      category_buckets=64, brand_buckets=256)


def make_marketplace(n_users: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    favourite = rng.integers(0, N_CATEGORIES, n_users)
    users = [f"u{i}" for i in range(n_users)]
    events = []
    for day in range(6):
        n_events = rng.integers(1, 4, n_users)
        for user, fav, count in zip(users, favourite, n_events):
            for _ in range(count):
                category = fav if rng.random() < 0.8 else rng.integers(0, N_CATEGORIES)
                ts = START + pd.Timedelta(days=day, seconds=int(rng.integers(0, 86_400)))
                events.append((user, ts, rng.choice(["view", "click", "cart"]), int(category * 100 + rng.integers(0, 20)),
                               int(category), int(category * 10 + rng.integers(0, 3)), pd.NA))
    event_stream = pd.DataFrame(events, columns=["user_key", "ts", "event_type", "item_id", "category_id",
                                                 "brand_id", "ad_id"]).astype({"ad_id": "Int64"})
    ads = pd.DataFrame({"ad_id": np.arange(N_ADS) + 1000, "category_id": np.arange(N_ADS) % N_CATEGORIES,
                        "brand_id": (np.arange(N_ADS) % N_CATEGORIES) * 10})
    impressions = []
    for day in range(1, 6):
        for u, (user, fav) in enumerate(zip(users, favourite)):
            for slot in range(3):
                ad = int(rng.integers(0, N_ADS))
                p_click = 0.6 if ad % N_CATEGORIES == fav else 0.05
                ts = START + pd.Timedelta(days=day, seconds=int(rng.integers(0, 86_400)))
                impressions.append((len(impressions), user, ad + 1000, ts, ts.date(), int(rng.random() < p_click)))
    impressions = pd.DataFrame(impressions, columns=["impression_id", "user_key", "ad_id", "impression_ts",
                                                     "impression_date", "label_click"])
    return event_stream, impressions, ads


@pytest.fixture(scope="module")
def marketplace():
    return make_marketplace()


@pytest.fixture(scope="module")
def fitted(marketplace):
    event_stream, impressions, ads = marketplace
    return fit_interest_encoder(event_stream, impressions, ads, VALIDATION_DATE, SMALL, progress=False)


def reference_last_events(event_stream, user_key, query_ts, max_len):
    """Slow, obvious version: the item ids of the user's last events strictly before query_ts."""
    rows = event_stream[(event_stream.user_key == user_key) & (event_stream.ts < query_ts)]
    return rows.sort_values("ts", kind="stable").item_id.tolist()[-max_len:]


def test_sequences_are_point_in_time(marketplace):
    event_stream, _, _ = marketplace
    # Queries placed exactly on event timestamps: the event at query_ts must not be included.
    queries = event_stream.sample(40, random_state=1)[["user_key", "ts"]].reset_index(drop=True)
    queries.loc[len(queries)] = ["never-seen-user", START + pd.Timedelta(days=3)]
    cut = EventIndex.from_event_stream(event_stream, SMALL).cut(queries.user_key, queries.ts, 5)
    for row, (user, ts) in enumerate(queries.itertuples(index=False)):
        expected = reference_last_events(event_stream, user, ts, 5)
        assert cut.item[row][cut.valid[row]].tolist() == hash_ids(expected, SMALL.item_buckets, ITEM_NAMESPACE).tolist()
        assert not cut.item[row][~cut.valid[row]].any()
    assert not cut.valid[-1].any()

    # Dropping every event at or after the query time changes nothing.
    query_user, query_ts = queries.user_key[0], queries.ts[0]
    past_only = event_stream[~((event_stream.user_key == query_user) & (event_stream.ts >= query_ts))]
    full = EventIndex.from_event_stream(event_stream, SMALL).cut(pd.Series([query_user]), pd.Series([query_ts]), 5)
    past = EventIndex.from_event_stream(past_only, SMALL).cut(pd.Series([query_user]), pd.Series([query_ts]), 5)
    for name in ("item", "category", "brand", "event_type", "gap", "valid"):
        np.testing.assert_array_equal(getattr(full, name), getattr(past, name))


def test_padding_does_not_change_the_embedding(marketplace):
    event_stream, _, _ = marketplace
    config = dataclasses.replace(SMALL, max_len=20)
    torch.manual_seed(0)
    model = InterestEncoder(ModelSizes.from_config(config)).eval()
    index = EventIndex.from_event_stream(event_stream, config)
    users, as_of = pd.Series(["u1", "u2", "u3"]), pd.Series([START + pd.Timedelta(hours=30)] * 3)
    short, long = index.cut(users, as_of, 6), index.cut(users, as_of, 20)
    assert short.valid.sum(1).max() < 6  # all history fits in both, so only the padding differs
    with torch.no_grad():
        from_short = model.encode(**short.to_tensors())
        from_long = model.encode(**long.to_tensors())
        scrambled = long.to_tensors()
        scrambled["item"] = torch.where(scrambled["valid"], scrambled["item"], torch.randint(1, 99, scrambled["item"].shape))
        from_scrambled = model.encode(**scrambled)
    torch.testing.assert_close(from_short, from_long, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(from_long, from_scrambled, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(model.encode(**index.cut(pd.Series(["nobody"]), as_of[:1], 6).to_tensors())).all()


def test_learns_the_planted_signal(fitted, marketplace):
    assert fitted.metrics["val_auc"] > 0.7, fitted.metrics
    assert fitted.metrics["device"] == "cpu" and fitted.metrics["precision"] == "fp32"
    assert len(fitted.history) == fitted.metrics["epochs_run"] >= fitted.metrics["best_epoch"] >= 1
    event_stream, impressions, _ = marketplace
    validation = impressions[impressions.impression_date == VALIDATION_DATE]
    scored = fitted.score_impressions(event_stream, validation)
    assert list(scored.columns) == ["impression_id", "encoder_logit", "encoder_similarity"]
    # Retrieval by cosine similarity alone also carries the signal.
    assert roc_auc_score(validation.label_click, scored.encoder_similarity) > 0.6
    # Scored in chunks (memory at scale), the same numbers row by row, up to float32 rounding: a
    # batch of another size may sum in another order (a logit of -0.0271566 came out 3e-8 apart).
    pd.testing.assert_frame_equal(fitted.score_impressions(event_stream, validation, chunk_rows=37), scored,
                                  check_exact=False, rtol=1e-5, atol=1e-6)


def test_pairs_and_embeddings_use_history_before_as_of(fitted, marketplace):
    event_stream, _, ads = marketplace
    as_of = pd.Timestamp(VALIDATION_DATE)
    pairs = pd.DataFrame({"user_key": ["u0", "u0", "u5"], "ad_id": [1000, 1001, 1002]})
    scored = fitted.score_pairs(event_stream, pairs, as_of)
    without_future = fitted.score_pairs(event_stream[event_stream.ts < as_of], pairs, as_of)
    np.testing.assert_allclose(scored.encoder_logit, without_future.encoder_logit, rtol=1e-5, atol=1e-6)
    users = fitted.user_embeddings(event_stream, as_of)
    ad_vectors = fitted.ad_embeddings()
    assert len(users) == event_stream.user_key.nunique() and len(ad_vectors) == len(ads)
    first_user = np.asarray(users.embedding[0])
    assert first_user.dtype == np.float32 and first_user.shape == (SMALL.d_model,)
    assert np.isclose(np.linalg.norm(first_user), 1.0, atol=1e-5)
    u0 = np.asarray(users.set_index("user_key").embedding["u0"])
    ad0 = np.asarray(ad_vectors.set_index("ad_id").embedding[1000])
    assert np.isclose(u0 @ ad0, scored.encoder_similarity[0], atol=1e-4)


def test_same_seed_same_model_whatever_the_row_order(marketplace, fitted):
    event_stream, impressions, ads = (frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
                                      for frame in marketplace)
    again = fit_interest_encoder(event_stream, impressions, ads, VALIDATION_DATE, SMALL, progress=False)
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in fitted.history]
    for name, value in fitted.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[name], value, rtol=0, atol=0)


def test_autocast_path_matches_plain_cpu(marketplace):
    event_stream, impressions, ads = marketplace
    torch.manual_seed(0)
    model = InterestEncoder(ModelSizes.from_config(SMALL)).eval()
    from ml.encoder.train import click_tensors
    tensors = click_tensors(EventIndex.from_event_stream(event_stream, SMALL), impressions.head(64), ads, SMALL)
    tensors.pop("label")
    with torch.no_grad():
        plain = model(**tensors)
        with resolve_device("cpu", "fp32").autocast():
            disabled = model(**tensors)
        with resolve_device("cpu", "bf16").autocast():
            bf16 = model(**tensors)
    torch.testing.assert_close(plain, disabled, rtol=0, atol=0)
    assert bf16.dtype in (torch.bfloat16, torch.float32) and torch.isfinite(bf16.float()).all()
    torch.testing.assert_close(bf16.float(), plain, rtol=0.1, atol=0.1)


def test_bf16_autocast_training_is_the_same_code_path_and_learns(marketplace, fitted):
    """What CUDA runs (bf16 autocast in the forward passes of training, validation and scoring;
    batches through DeviceChoice.to_device) forced on the CPU: the whole fit goes through it and
    learns the planted signal about as well as fp32."""
    event_stream, impressions, ads = marketplace
    config = dataclasses.replace(SMALL, precision="bf16", max_epochs=4)
    bf16 = fit_interest_encoder(event_stream, impressions, ads, VALIDATION_DATE, config, progress=False)
    assert bf16.metrics["precision"] == "bf16-autocast" and bf16.metrics["device"] == "cpu"
    assert all(np.isfinite(epoch["train_loss"]) for epoch in bf16.history)
    assert bf16.metrics["val_auc"] > 0.65 and abs(bf16.metrics["val_auc"] - fitted.metrics["val_auc"]) < 0.1
    batch = torch.arange(6)
    assert resolve_device("cpu", "bf16").to_device(batch) is batch  # no copy on the CPU


def test_compiled_training_loss_trains_the_same_weights_as_eager():
    # torch.compile wraps the training loss on CUDA by default ('auto'); forced on the CPU here with
    # a backend that runs Dynamo's captured graphs as they are (inductor's C++ codegen takes over a
    # minute here) and counts them: the loss went through Dynamo, and the same data, seed and order
    # give the same weights as eager.
    assert resolve_device("cpu", compile="auto").compile_backend is None
    assert resolve_device("cuda", compile="auto").compile_backend == "inductor"
    captured: list[torch.fx.GraphModule] = []

    @torch._dynamo.register_backend(name="counting_eager")
    def counting_eager(graph_module, example_inputs):
        captured.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    rng = np.random.default_rng(4)
    n_items, max_len = 20, 6
    walks = rng.integers(1, n_items + 1, size=(48, max_len + 1))
    windows = TrainingWindows(inputs=walks[:, :-1], targets=walks[:, 1:])

    def weights(compile: str):
        config = dataclasses.replace(SMALL, max_len=max_len, max_epochs=2, batch_size=16, dropout=0.0,
                                     device="cpu", compile=compile)
        model, result = fit_next_item(windows, n_items, walks[:8, :-1], walks[:8, -1], config, progress=False)
        return model.item.weight.detach().clone(), [epoch["train_loss"] for epoch in result.history]

    eager_weights, eager_losses = weights("off")
    assert not captured
    compiled_weights, compiled_losses = weights("counting_eager")
    assert captured, "the training loss never went through torch.compile"
    torch.testing.assert_close(compiled_weights, eager_weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-4)


def test_save_load_round_trip(fitted, marketplace, tmp_path):
    event_stream, impressions, _ = marketplace
    loaded = FittedEncoder.load(fitted.save(tmp_path / "encoder"))
    sample = impressions.head(50)
    pd.testing.assert_frame_equal(fitted.score_impressions(event_stream, sample),
                                  loaded.score_impressions(event_stream, sample))
    assert loaded.metrics == pytest.approx(fitted.metrics) and loaded.config == fitted.config


def test_an_encoder_saved_before_the_input_norm_still_loads_and_scores(fitted, marketplace, tmp_path):
    """Registered champions outlive code changes: an artifact without `input_norm` (and without
    its weights) loads as the model it was, with no input LayerNorm."""
    import json

    from ml.encoder.fitted import META_FILE, WEIGHTS_FILE
    from ml.encoder.model import InterestEncoder

    event_stream, impressions, _ = marketplace
    old = fitted.model.sizes.__class__(**{**vars(fitted.model.sizes), "input_norm": False})
    old_model = InterestEncoder(old)
    old_model.load_state_dict({k: v for k, v in fitted.model.state_dict().items() if not k.startswith("ln_in.")})
    directory = FittedEncoder(old_model, fitted.config, fitted.ads, fitted.metrics, fitted.history).save(tmp_path / "old")
    meta = json.loads((directory / META_FILE).read_text())
    del meta["sizes"]["input_norm"]
    (directory / META_FILE).write_text(json.dumps(meta))
    assert not any(k.startswith("ln_in.") for k in torch.load(directory / WEIGHTS_FILE, weights_only=True))
    loaded = FittedEncoder.load(directory)
    assert isinstance(loaded.model.ln_in, torch.nn.Identity)
    sample = impressions.head(20)
    pd.testing.assert_frame_equal(loaded.score_impressions(event_stream, sample),
                                  FittedEncoder(old_model, fitted.config, fitted.ads, fitted.metrics,
                                                fitted.history).score_impressions(event_stream, sample))


def test_mlflow_registers_challenger(fitted, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from ml.encoder.mlflow_io import log_encoder_to_mlflow, packed_input_example
    from ml.registry import CHALLENGER, configure_mlflow
    from ml.settings import Settings

    configure_mlflow(Settings.from_env({"AD_DATA_ROOT": str(tmp_path)}))
    run_id, version = log_encoder_to_mlflow(fitted, "interest_encoder", tags={"partition": "2026-11-06"})
    client = MlflowClient()
    assert client.get_model_version_by_alias("interest_encoder", CHALLENGER).version == version.version
    run = client.get_run(run_id)
    assert run.data.tags["device"] == "cpu" and run.data.params["max_len"] == str(SMALL.max_len)
    assert len(client.get_metric_history(run_id, "val_auc")) == len(fitted.history)
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/interest_encoder/{version.version}"))
    assert not list(model_dir.rglob("*.pkl")), "the registered encoder must load without unpickling"
    served = mlflow.pyfunc.load_model(str(model_dir))
    example = torch.from_numpy(packed_input_example(fitted))
    with torch.no_grad():
        expected = fitted.model(*[example[:, i * SMALL.max_len:(i + 1) * SMALL.max_len] for i in range(6)],
                                *example[:, -3:].T)
    np.testing.assert_allclose(served.predict(example.numpy()), expected.numpy(), rtol=1e-6)


def test_next_item_learns_a_successor_rule():
    # Each user walks the catalog i -> i+1, so the next item is fully determined by the last one.
    rng = np.random.default_rng(0)
    n_items, max_len = 40, 8
    starts = rng.integers(1, n_items - max_len, 600)
    histories = np.stack([np.arange(s, s + max_len) for s in starts])
    targets = starts + max_len
    config = dataclasses.replace(SMALL, max_len=max_len, max_epochs=8, batch_size=64, lr=5e-3)
    walks = np.concatenate([histories[:500], targets[:500, None]], axis=1)  # each training user's items
    windows = TrainingWindows(inputs=walks[:, :-1], targets=walks[:, 1:])
    per_epoch_ranks: list[np.ndarray] = []
    model, result = fit_next_item(windows, n_items, histories[500:], targets[500:], config, progress=False,
                                  validation_ranks=per_epoch_ranks)
    ranks = rank_targets(model, histories[500:], targets[500:], n_items, resolve_device("cpu"))
    hit, ndcg = hit_and_ndcg_at_k(ranks, 10)
    assert hit > 0.8 and ndcg > 0.5, (hit, ndcg)
    assert result.best_epoch >= 1 and "val_ndcg@10" in result.history[0]
    # One rank array per validated epoch; the returned model is the kept epoch's.
    assert len(per_epoch_ranks) == result.epochs_run
    np.testing.assert_array_equal(ranks, per_epoch_ranks[result.best_epoch - 1])
    best = result.history[result.best_epoch - 1]
    assert best["val_mrr"] == pytest.approx((1 / (ranks + 1)).mean())


def test_hit_and_ndcg_definitions():
    hit, ndcg = hit_and_ndcg_at_k(np.array([0, 1, 9, 10]), 10)  # 0-based rank of the target
    assert hit == pytest.approx(0.75)
    assert ndcg == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 4)


def test_training_windows_supervise_every_pair_once_with_enough_context():
    # Two users: items 1..13 (train end 13, exclusive) and 21..23; window 6, stride 3.
    items = np.array([0, *range(1, 14), *range(21, 24)])
    windows = training_windows(items, user_start=np.array([1, 14]), user_train_end=np.array([14, 17]), max_len=6)
    pairs = []
    for inputs, targets in zip(windows.inputs, windows.targets):
        for position in np.flatnonzero(targets):
            pairs.append((inputs[position], targets[position], position + 1))  # (last input, next, context)
    assert sorted((a, b) for a, b, _ in pairs) == [(i, i + 1) for i in range(1, 13)] + [(21, 22), (22, 23)]
    # Beyond a user's first window, every supervised pair sees at least half a window of history.
    assert all(context >= 3 or last < 4 or last in (21, 22) for last, _, context in pairs)


def test_causal_outputs_never_see_later_items():
    torch.manual_seed(0)
    model = InterestEncoder(ModelSizes(item_buckets=30, category_buckets=1, brand_buckets=1, event_type_tokens=1,
                                       gap_buckets=1, max_len=6, d_model=16, n_heads=2, n_layers=2, dropout=0.0)).eval()
    items = torch.tensor([[3, 7, 9, 11, 0, 0]])
    changed = items.clone()
    changed[0, 3] = 20  # a later item differs
    zeros = torch.zeros_like(items)
    run = lambda x: model.encode_causal(x, zeros, zeros, zeros, zeros, x > 0)  # noqa: E731
    with torch.no_grad():
        before, after = run(items), run(changed)
    torch.testing.assert_close(before[0, :3], after[0, :3])
    assert not torch.allclose(before[0, 3], after[0, 3])
    assert torch.isfinite(before).all()  # padded positions do not produce NaN


def test_left_align_moves_padding_to_the_right():
    aligned, counts = left_align(np.array([[0, 0, 5, 6], [1, 2, 3, 4], [0, 0, 0, 0]]))
    assert aligned.tolist() == [[5, 6, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]] and counts.tolist() == [2, 4, 0]


def test_next_item_logit_scale_reaches_the_training_loss():
    # Same data, seed and order: only the scale of the training logits differs, so the weights must.
    rng = np.random.default_rng(1)
    n_items, max_len = 20, 6
    walks = rng.integers(1, n_items + 1, size=(64, max_len + 1))
    windows = TrainingWindows(inputs=walks[:, :-1], targets=walks[:, 1:])
    config = dataclasses.replace(SMALL, max_len=max_len, max_epochs=1, batch_size=64)
    trained = [fit_next_item(windows, n_items, walks[:8, :-1], walks[:8, -1], config, progress=False,
                             logit_scale=scale)[0] for scale in (1.0, 1.0, 2.0)]
    torch.testing.assert_close(trained[0].item.weight, trained[1].item.weight)
    assert not torch.allclose(trained[0].item.weight, trained[2].item.weight)


def test_lr_multiplier_warms_up_then_decays_to_the_floor():
    warm = [lr_multiplier(step, warmup_steps=4) for step in range(6)]
    assert warm == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]  # never 0 at the first step, constant without decay
    cosine = [lr_multiplier(step, warmup_steps=2, decay_steps=10, floor=0.1) for step in range(2, 20)]
    assert cosine[0] == pytest.approx(1.0) and cosine[5] == pytest.approx(0.55)  # halfway: mean of 1 and floor
    assert cosine[10:] == pytest.approx([0.1] * 8)  # held at the floor after the decay
    assert all(a >= b for a, b in zip(cosine, cosine[1:]))
    linear = [lr_multiplier(step, decay_steps=4, shape="linear") for step in range(6)]
    assert linear == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_next_item_schedule_and_regularizers_reach_training():
    # Same data, seed and order: the lr schedule, weight decay and label smoothing each change the
    # weights; label smoothing over a catalog whose padding logit is -inf must stay finite.
    rng = np.random.default_rng(2)
    n_items, max_len = 20, 6
    walks = rng.integers(1, n_items + 1, size=(64, max_len + 1))
    windows = TrainingWindows(inputs=walks[:, :-1], targets=walks[:, 1:])
    config = dataclasses.replace(SMALL, max_len=max_len, max_epochs=2, batch_size=32)

    def weights(**options):
        model, result = fit_next_item(windows, n_items, walks[:8, :-1], walks[:8, -1], config, progress=False,
                                      **options)
        assert all(np.isfinite(row["train_loss"]) for row in result.history)
        return model.item.weight.detach().clone()

    base = {"warmup_epochs": 0, "decay_epochs": None, "label_smoothing": 0.0}  # constant lr, plain CE
    plain = weights(**base)
    torch.testing.assert_close(plain, weights(**base))
    for options in ({"warmup_epochs": 1}, {"decay_epochs": 1}, {"weight_decay": 0.1}, {"label_smoothing": 0.1}):
        changed = weights(**{**base, **options})
        assert torch.isfinite(changed).all() and not torch.allclose(plain, changed), options


def test_ema_returns_the_moving_average_of_the_weights_the_plain_run_passed_through():
    # Training is the same with or without the average (same seed, order and updates); the run with
    # `ema_decay` returns the average of the weights after each step, which this recomputes.
    torch.manual_seed(0)
    inputs, targets = torch.randn(40, 3), torch.randn(40, 1)
    tensors = {"x": inputs, "y": targets}

    def loss_fn(model, batch):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def run(ema_decay: float, seen: list | None = None):
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)

        def record(step: int) -> float:  # called before each step's update: the weights so far
            if seen is not None:
                seen.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
            return 1.0

        train_with_early_stopping(model, tensors, loss_fn, lambda m: {"score": 0.0}, "score", batch_size=8,
                                  lr=0.05, max_epochs=1, patience=1, seed=3, device_choice=resolve_device("cpu"),
                                  progress=False, lr_multiplier=record, ema_decay=ema_decay)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    passed_through: list[torch.Tensor] = []
    last = run(0.0, passed_through)
    after_each_step = passed_through[1:] + [last]  # weights after steps 1..5
    expected = after_each_step[0]
    for weights in after_each_step[1:]:
        expected = 0.8 * expected + 0.2 * weights
    averaged = run(0.8)
    torch.testing.assert_close(averaged, expected)
    assert not torch.allclose(averaged, last)


def test_epoch_averaging_returns_the_mean_of_the_last_epochs_weights():
    # The same training with and without averaging; with average_epochs=2 the loop validates and
    # returns the mean of the last two epoch-end weights, which the plain run's epoch ends give.
    torch.manual_seed(0)
    tensors = {"x": torch.randn(40, 3), "y": torch.randn(40, 1)}

    def loss_fn(model, batch):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def run(average_epochs: int, epoch_ends: list):
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)

        def validate(evaluated):  # a rising score: the last epoch is always the best
            epoch_ends.append(torch.cat([p.detach().flatten().clone() for p in evaluated.parameters()]))
            return {"score": float(len(epoch_ends))}

        train_with_early_stopping(model, tensors, loss_fn, validate, "score", batch_size=8, lr=0.05, max_epochs=3,
                                  patience=3, seed=3, device_choice=resolve_device("cpu"), progress=False,
                                  average_epochs=average_epochs)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain_ends: list[torch.Tensor] = []
    last = run(1, plain_ends)
    averaged_ends: list[torch.Tensor] = []
    averaged = run(2, averaged_ends)
    torch.testing.assert_close(averaged_ends[0], plain_ends[0])  # one epoch so far: nothing to average
    torch.testing.assert_close(averaged_ends[1], (plain_ends[0] + plain_ends[1]) / 2)
    torch.testing.assert_close(averaged, (plain_ends[1] + plain_ends[2]) / 2)
    assert not torch.allclose(averaged, last)


def test_smoothed_early_stopping_follows_the_moving_average_not_one_lucky_epoch():
    scores = [0.10, 0.50, 0.10, 0.30, 0.32, 0.34, 0.20, 0.10, 0.10]  # a spike at epoch 2, a rise at 4-6
    torch.manual_seed(0)
    tensors = {"x": torch.randn(8, 3), "y": torch.randn(8, 1)}

    def loss_fn(model, batch):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def run(smoothing_epochs: int):
        served = iter(scores)
        return train_with_early_stopping(torch.nn.Linear(3, 1), tensors, loss_fn, lambda m: {"score": next(served)},
                                         "score", batch_size=8, lr=0.01, max_epochs=len(scores), patience=4, seed=0,
                                         device_choice=resolve_device("cpu"), progress=False,
                                         smoothing_epochs=smoothing_epochs)

    plain = run(1)
    assert (plain.best_epoch, plain.epochs_run) == (2, 6)  # the spike, then four epochs without gain
    smoothed = run(3)  # means over 3 epochs: .10 .30 .233 .30 .24 .32 .287 .213 .133
    assert smoothed.best_epoch == 6 and smoothed.best_score == pytest.approx(0.32)
    assert smoothed.epochs_run == len(scores)


def test_attention_dropout_is_off_at_evaluation():
    torch.manual_seed(0)
    sizes = ModelSizes(item_buckets=30, category_buckets=1, brand_buckets=1, event_type_tokens=1, gap_buckets=1,
                       max_len=6, d_model=16, n_heads=2, n_layers=2, dropout=0.0, attn_dropout=0.5)
    model = InterestEncoder(sizes)
    items = torch.tensor([[3, 7, 9, 11, 5, 2]])
    zeros = torch.zeros_like(items)
    run = lambda: model.encode_causal(items, zeros, zeros, zeros, zeros, items > 0)  # noqa: E731
    model.train()
    torch.manual_seed(1)
    first = run()
    assert not torch.allclose(first, run())  # a fresh attention mask per pass while training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(run(), run())


def test_validation_is_a_seeded_sample_when_capped():
    import datetime as dt

    import pandas as pd

    from ml.encoder.config import EncoderConfig
    from ml.encoder.train import _split_by_day

    days = pd.to_datetime(["2026-11-01"] * 50 + ["2026-11-02"] * 500)
    impressions = pd.DataFrame({"impression_id": range(550), "impression_ts": days + pd.to_timedelta(range(550), "s"),
                                "impression_date": days.date})
    config = EncoderConfig(max_validation_examples=100)
    _, validation = _split_by_day(impressions, dt.date(2026, 11, 2), config)
    _, again = _split_by_day(impressions, dt.date(2026, 11, 2), config)
    assert len(validation) == 100 and validation["impression_id"].tolist() == again["impression_id"].tolist()
    assert validation["impression_ts"].is_monotonic_increasing and validation["impression_id"].min() >= 50
    _, whole = _split_by_day(impressions, dt.date(2026, 11, 2), EncoderConfig())
    assert len(whole) == 500
