"""Encoder hyper-parameters: one small dataclass, read by training, scoring and MLflow logging."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EncoderConfig:
    max_len: int = 50
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    dropout: float = 0.1
    batch_size: int = 512
    lr: float = 1e-3
    max_epochs: int = 8
    patience: int = 2
    seed: int = 42
    device: str = "auto"  # 'auto' -> CUDA when available, else CPU; or any torch device string
    max_train_examples: int | None = None  # keep only the most recent N training impressions
    # Score early stopping on a seeded uniform sample of at most N validation-day impressions: at
    # 100k users the whole day is >1M rows, and scoring it every epoch cost more than training.
    max_validation_examples: int | None = None
    precision: str = "auto"  # 'auto' -> bf16 autocast on CUDA, fp32 on CPU; 'fp32' or 'bf16' to force
    # 'auto' -> torch.compile (inductor) of the training loss on CUDA only; 'off'; or a backend name to force it
    compile: str = "auto"
    # Hashed vocab sizes: ids are hashed into buckets so unseen items/ads still get an embedding.
    item_buckets: int = 1 << 16
    category_buckets: int = 1 << 12
    brand_buckets: int = 1 << 14
    gap_buckets: int = 24
