"""Next-item prediction with the same InterestEncoder, trained as SASRec is: causal attention over
windows of a user's history with a cross-entropy loss over the whole catalog at every position
(RecBole's 'CE' setting), plus HR@K / NDCG@K with full ranking.

Each (prefix -> next item) pair is supervised once per epoch, as with RecBole's prefix
augmentation, but one forward pass covers a whole window of pairs instead of one pair.

Items here are dense indices 1..n_items (0 = padding) rather than hashed buckets, so that ranking
over "all items" has exactly one embedding per item, as RecBole does.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from ml.encoder.config import EncoderConfig
from ml.encoder.device import DeviceChoice, resolve_device
from ml.encoder.loop import LoopResult, train_with_early_stopping
from ml.encoder.model import InterestEncoder, ModelSizes


def next_item_model(n_items: int, config: EncoderConfig, attn_dropout: float = 0.0,
                    item_bias: bool = False) -> InterestEncoder:
    sizes = dataclasses.replace(ModelSizes.from_config(config), item_buckets=n_items + 1, category_buckets=1,
                                brand_buckets=1, event_type_tokens=1, gap_buckets=1, attn_dropout=attn_dropout,
                                item_bias=item_bias)
    return InterestEncoder(sizes)


@dataclasses.dataclass(frozen=True)
class TrainingWindows:
    """Left-aligned item windows [W, L] and the next item at each position (0 = no loss there)."""
    inputs: np.ndarray
    targets: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int((self.targets > 0).sum())


def training_windows(items: np.ndarray, user_start: np.ndarray, user_train_end: np.ndarray,
                     max_len: int, stride: int | None = None) -> TrainingWindows:
    """Cut each user's training items `items[start:end]` into windows of `max_len` every `stride`
    items (default max_len // 2); every (item p -> item p+1) pair is supervised in exactly one window.

    A window after the user's first one only supervises its last `stride` positions: the earlier
    ones were supervised in previous windows. So every pair sees at least max_len - stride earlier
    items (or all of them near the start of the history), up to max_len. A smaller stride buys
    more context per pair with more windows (more compute) per epoch.
    """
    stride = max(1, min(stride or max_len // 2, max_len))
    pairs = np.maximum(user_train_end - user_start - 1, 0)  # inputs start..end-2, each with a next item
    # The first window covers max_len pairs, each later one `stride` more.
    per_user = np.where(pairs > 0, 1 + -(-np.maximum(pairs - max_len, 0) // stride), 0)
    owner = np.repeat(np.arange(len(user_start)), per_user)
    rank_in_user = np.arange(len(owner)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    window_start = user_start[owner] + rank_in_user * stride
    positions = window_start[:, None] + np.arange(max_len)[None, :]
    has_pair = positions < (user_train_end[owner] - 1)[:, None]
    supervised = has_pair & ((rank_in_user == 0)[:, None] | (np.arange(max_len) >= max_len - stride)[None, :])
    safe = np.where(has_pair, positions, 0)
    inputs = np.where(has_pair, items[safe], 0)
    targets = np.where(supervised, items[np.minimum(safe + 1, len(items) - 1)], 0)
    return TrainingWindows(inputs=inputs.astype(np.int64), targets=targets.astype(np.int64))


def _sequence_inputs(item: torch.Tensor) -> dict[str, torch.Tensor]:
    zeros = torch.zeros_like(item)
    return {"item": item, "category": zeros, "brand": zeros, "event_type": zeros, "gap": zeros, "valid": item > 0}


def left_align(histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded [N, L] -> (left-aligned [N, L], number of items per row)."""
    histories = np.asarray(histories)
    length = histories.shape[1]
    counts = (histories > 0).sum(1)
    index = (np.arange(length)[None, :] + (length - counts)[:, None]) % length
    aligned = np.take_along_axis(histories, index, axis=1)
    return np.where(np.arange(length)[None, :] < counts[:, None], aligned, 0), counts


def user_vectors(model: InterestEncoder, aligned: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The causal output after each row's last item: the user's next-item query."""
    outputs = model.encode_causal(**_sequence_inputs(aligned))
    last = (counts - 1).clamp(min=0)
    return outputs[torch.arange(len(aligned), device=aligned.device), last]


def catalog_scores(model: InterestEncoder, user: torch.Tensor) -> torch.Tensor:
    catalog = model.item.weight  # category/brand are padding here, so the target tower is the id table
    scores = model.next_item_scores(user, catalog).float()
    scores[:, 0] = float("-inf")  # the padding index is never a candidate
    return scores


def rank_targets(model: InterestEncoder, histories: np.ndarray, targets: np.ndarray, n_items: int,
                 device_choice: DeviceChoice, seen: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
    """0-based rank of each target among all items (items scoring strictly higher come first).

    `histories` [N, L] left-padded; `seen` [N, S] zero-padded: items to drop from the ranking (the
    target itself is never dropped).
    """
    model.eval()
    aligned, counts = left_align(histories)
    aligned_t, counts_t = torch.from_numpy(aligned.astype(np.int64)), torch.from_numpy(counts.astype(np.int64))
    ranks = []
    with torch.no_grad(), device_choice.autocast():
        for start in range(0, len(targets), batch_size):
            rows = slice(start, start + batch_size)
            user = user_vectors(model, device_choice.to_device(aligned_t[rows]), device_choice.to_device(counts_t[rows]))
            scores = catalog_scores(model, user)
            target = torch.from_numpy(targets[rows]).long().to(scores.device)
            target_score = scores.gather(1, target[:, None])
            if seen is not None:
                seen_rows = torch.from_numpy(seen[rows]).long().to(scores.device)
                scores.scatter_(1, seen_rows, float("-inf"))
                scores[:, 0] = float("-inf")
            ranks.append((scores > target_score).sum(1).cpu())
    return torch.cat(ranks).numpy()


def ndcg_per_user(ranks: np.ndarray, k: int | None = None) -> np.ndarray:
    """Each user's NDCG@K for one relevant item at 0-based `ranks` (no cutoff when `k` is None)."""
    ranks = np.asarray(ranks)
    gain = 1.0 / np.log2(ranks + 2.0)
    return gain if k is None else np.where(ranks < k, gain, 0.0)


def hit_and_ndcg_at_k(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """RecBole's Hit@K and NDCG@K for one relevant item per user."""
    return float((np.asarray(ranks) < k).mean()), float(ndcg_per_user(ranks, k).mean())


# Training multiplies the catalog logits by this (a softmax temperature of 1/2). The user vector
# leaves a LayerNorm (components ~unit variance) and the item table starts at std 0.02, so at
# first every logit is ~0 and the softmax over 1,682 items is almost flat; a larger scale lets the
# CE gradient sharpen it sooner. Ranking is unaffected by the scale, only the loss's shape.
# Chosen on validation NDCG@10 of ml-100k at 2 epochs (mean of 3 seeds, benchmarks/README.md).
DEFAULT_LOGIT_SCALE = 2.0

# The next-item recipe at convergence (early stopping, patience 10), each chosen on validation
# NDCG@10 of ml-100k only (benchmarks/README.md has the table). EncoderConfig's own dropout and lr
# are the click encoder's; next-item callers pass these.
NEXT_ITEM_DROPOUT = 0.5  # SASRec's; 0.2 overfit: validation peaked at epoch 13 (0.0645), 0.5 kept rising
NEXT_ITEM_LR = 3e-3  # peak of the schedule below
NEXT_ITEM_MAX_LEN = 50  # history length; RecBole's protocol gives SASRec 50
NEXT_ITEM_D_MODEL = 64  # embedding width; RecBole's protocol gives SASRec 64
# Warm up over the first epoch, then cosine-decay to 2% over 60 epochs: with SASRec's constant 1e-3
# the validation curve wandered by +-0.004 per epoch and peaked at 0.0698 (epoch 39, seed 2020);
# 3e-3 decayed settles higher, sooner (0.0732, epoch 24). Over 3 seeds, decays of 20/25/30/40/60/80
# epochs reached validation means 0.0697/0.0715/0.0728/0.0749/0.0772/0.0769.
NEXT_ITEM_WARMUP_EPOCHS = 1.0
NEXT_ITEM_DECAY_EPOCHS = 60.0
NEXT_ITEM_LR_FLOOR = 0.02
# Label smoothing 0.1 on the catalog softmax: with it the validation curve kept rising to epoch 46
# and stayed on a plateau (0.0732 -> 0.0752, seed 2020); AdamW weight decay 0.1 did not help (0.0719).
NEXT_ITEM_LABEL_SMOOTHING = 0.1
# Early stopping follows the mean validation NDCG@10 of the last 5 epochs and keeps the weights of
# the epoch that mean peaks at. At this learning rate one epoch's score jumps by +-0.005, and the
# raw curve's first spike ended runs early (seed 2020 at epoch 14). Judged on validation users the
# rule never saw (benchmarks/encoder_stopping_rules.py, 5 seeds): held-out NDCG@10 0.0703 vs 0.0685.
NEXT_ITEM_SMOOTHING_EPOCHS = 5


def lr_multiplier(step: int, warmup_steps: int = 0, decay_steps: int | None = None, floor: float = 0.0,
                  shape: str = "cosine") -> float:
    """Learning-rate factor at optimizer step `step` (0-based): linear warmup from 1/warmup_steps to 1
    over `warmup_steps`, then (if `decay_steps`) a cosine or linear decay to `floor` over the next
    `decay_steps` steps, held at `floor` afterwards."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if not decay_steps:
        return 1.0
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    falling = 0.5 * (1.0 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress
    return floor + (1.0 - floor) * falling


def fit_next_item(windows: TrainingWindows, n_items: int, val_histories: np.ndarray, val_targets: np.ndarray,
                  config: EncoderConfig, progress: bool = True,
                  logit_scale: float = DEFAULT_LOGIT_SCALE, weight_decay: float = 0.0,
                  warmup_epochs: float = NEXT_ITEM_WARMUP_EPOCHS, decay_epochs: float | None = NEXT_ITEM_DECAY_EPOCHS,
                  lr_floor: float = NEXT_ITEM_LR_FLOOR, decay_shape: str = "cosine",
                  label_smoothing: float = NEXT_ITEM_LABEL_SMOOTHING,
                  attn_dropout: float = 0.0, ema_decay: float = 0.0,
                  average_epochs: int = 1, item_bias: bool = False,
                  selection_metric: str = "val_ndcg@10", smoothing_epochs: int = NEXT_ITEM_SMOOTHING_EPOCHS,
                  validation_ranks: list[np.ndarray] | None = None) -> tuple[InterestEncoder, LoopResult]:
    """Train on causal windows; keep the epoch at which the mean validation NDCG@10 of the last
    `smoothing_epochs` epochs peaks (`selection_metric` instead of NDCG@10 if given).

    `config.batch_size` counts (prefix, next item) pairs per step, as RecBole's batch counts
    augmented sequences; a step takes about that many pairs' worth of windows. `config.lr` is the
    schedule's peak (warmup/decay in epochs of this `windows`); pass NEXT_ITEM_DROPOUT / NEXT_ITEM_LR
    in `config` for the measured recipe. Off by default: `weight_decay` (AdamW; 0.1 measured no
    better, 0.0719 vs 0.0732), `attn_dropout` (SASRec's 0.5, not measured: CPU cost, see Block),
    `ema_decay`, `average_epochs` and `item_bias` (each lower on validation, benchmarks/README.md).
    `validation_ranks`, if given, receives every epoch's per-user validation ranks.
    """
    torch.manual_seed(config.seed)
    device_choice = resolve_device(config.device, config.precision, config.compile)
    model = next_item_model(n_items, config, attn_dropout=attn_dropout, item_bias=item_bias)
    pairs_per_window = max(windows.n_pairs / max(len(windows.inputs), 1), 1.0)
    windows_per_step = max(1, round(config.batch_size / pairs_per_window))
    train_tensors = {"item": torch.from_numpy(windows.inputs), "target": torch.from_numpy(windows.targets)}

    def loss_fn(model: InterestEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = batch["target"]
        outputs = model.encode_causal(**_sequence_inputs(batch["item"]))
        supervised = target > 0
        logits = logit_scale * catalog_scores(model, outputs[supervised])
        if label_smoothing > 0:  # smoothing spreads mass over every column: leave out the -inf padding one
            return F.cross_entropy(logits[:, 1:], target[supervised] - 1, label_smoothing=label_smoothing)
        return F.cross_entropy(logits, target[supervised])

    def validate(model: InterestEncoder) -> dict[str, float]:
        ranks = rank_targets(model, val_histories, val_targets, n_items, device_choice)
        if validation_ranks is not None:  # each epoch's per-user ranks, for studying stopping rules
            validation_ranks.append(ranks)
        hit, ndcg = hit_and_ndcg_at_k(ranks, 10)
        # Full-ranking metrics: every user contributes, not only the ~13% with the target in the top 10.
        return {"val_hit@10": hit, "val_ndcg@10": ndcg, "val_mrr": float((1.0 / (ranks + 1.0)).mean()),
                "val_ndcg": float(ndcg_per_user(ranks).mean())}

    steps_per_epoch = -(-len(windows.inputs) // windows_per_step)
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    decay_steps = round(decay_epochs * steps_per_epoch) if decay_epochs else None
    schedule = None if not (warmup_steps or decay_steps) else (
        lambda step: lr_multiplier(step, warmup_steps, decay_steps, lr_floor, decay_shape))
    result = train_with_early_stopping(
        model, train_tensors, loss_fn, validate, selection_metric,
        batch_size=windows_per_step, lr=config.lr, max_epochs=config.max_epochs, patience=config.patience,
        seed=config.seed, device_choice=device_choice, progress=progress, description="next-item encoder",
        examples_per_epoch=windows.n_pairs, weight_decay=weight_decay, lr_multiplier=schedule, ema_decay=ema_decay,
        average_epochs=average_epochs, smoothing_epochs=smoothing_epochs,
    )
    return model, result
