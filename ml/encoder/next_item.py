"""Next-item prediction with the same InterestEncoder: scores = user_emb @ item_embeddings.T with
cross-entropy over the whole catalog (SASRec/RecBole 'CE' setting), plus HR@K / NDCG@K.

Items here are dense indices 1..n_items (0 = padding) rather than hashed buckets, so that ranking
over "all items" has exactly one embedding per item, as RecBole does.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ml.encoder.config import EncoderConfig
from ml.encoder.device import DeviceChoice, resolve_device
from ml.encoder.loop import LoopResult, train_with_early_stopping
from ml.encoder.model import InterestEncoder, ModelSizes


def next_item_model(n_items: int, config: EncoderConfig) -> InterestEncoder:
    sizes = dataclasses.replace(ModelSizes.from_config(config), item_buckets=n_items + 1, category_buckets=1,
                                brand_buckets=1, event_type_tokens=1, gap_buckets=1)
    return InterestEncoder(sizes)


def history_tensors(histories: np.ndarray) -> dict[str, torch.Tensor]:
    """Left-padded item histories [N, L] -> encoder inputs (items only, other fields padding)."""
    item = torch.from_numpy(np.ascontiguousarray(histories, dtype=np.int64))
    zeros = torch.zeros_like(item)
    return {"item": item, "category": zeros, "brand": zeros, "event_type": zeros, "gap": zeros, "valid": item > 0}


def catalog_scores(model: InterestEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    user = model.encode(**batch)
    catalog = model.item.weight  # category/brand are padding here, so the target tower is the id table
    scores = model.next_item_scores(user, catalog).float()
    scores[:, 0] = float("-inf")  # the padding index is never a candidate
    return scores


def rank_targets(model: InterestEncoder, histories: np.ndarray, targets: np.ndarray, n_items: int,
                 device_choice: DeviceChoice, seen: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
    """0-based rank of each target among all items (items scoring strictly higher come first).

    `seen` [N, S] zero-padded: items to drop from the ranking (the target itself is never dropped).
    """
    model.eval()
    inputs = history_tensors(histories)
    ranks = []
    with torch.no_grad(), device_choice.autocast():
        for start in range(0, len(targets), batch_size):
            batch = {k: v[start:start + batch_size].to(device_choice.device) for k, v in inputs.items()}
            scores = catalog_scores(model, batch)
            target = torch.from_numpy(targets[start:start + batch_size]).long().to(scores.device)
            target_score = scores.gather(1, target[:, None])
            if seen is not None:
                seen_rows = torch.from_numpy(seen[start:start + batch_size]).long().to(scores.device)
                scores.scatter_(1, seen_rows, float("-inf"))
                scores[:, 0] = float("-inf")
            ranks.append((scores > target_score).sum(1).cpu())
    return torch.cat(ranks).numpy()


def hit_and_ndcg_at_k(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """RecBole's Hit@K and NDCG@K for one relevant item per user."""
    ranks = np.asarray(ranks)
    hits = ranks < k
    return float(hits.mean()), float(np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def fit_next_item(train_histories: np.ndarray, train_targets: np.ndarray, n_items: int,
                  val_histories: np.ndarray, val_targets: np.ndarray, config: EncoderConfig,
                  progress: bool = True) -> tuple[InterestEncoder, LoopResult]:
    """Train on (history, next item) pairs; keep the epoch with the best validation NDCG@10."""
    torch.manual_seed(config.seed)
    device_choice = resolve_device(config.device, config.precision)
    model = next_item_model(n_items, config)
    train_tensors = {**history_tensors(train_histories), "target": torch.from_numpy(train_targets.astype(np.int64))}

    def loss_fn(model: InterestEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = batch.pop("target")
        return F.cross_entropy(catalog_scores(model, batch), target)

    def validate(model: InterestEncoder) -> dict[str, float]:
        hit, ndcg = hit_and_ndcg_at_k(rank_targets(model, val_histories, val_targets, n_items, device_choice), 10)
        return {"val_hit@10": hit, "val_ndcg@10": ndcg}

    result = train_with_early_stopping(
        model, train_tensors, loss_fn, validate, "val_ndcg@10",
        batch_size=config.batch_size, lr=config.lr, max_epochs=config.max_epochs, patience=config.patience,
        seed=config.seed, device_choice=device_choice, progress=progress, description="next-item encoder",
    )
    return model, result
