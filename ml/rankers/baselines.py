"""Baselines kept beside LightGBM in every report, each `fit(train, task)` then `predict(frame)`.

- popularity: the ad's smoothed historical rate on the training rows;
- logistic regression: one-hot categoricals + scaled numerics (sklearn);
- matrix factorization: logistic MF over user x ad with biases (PyTorch, full-batch Adam);
- oracle: the simulator's true probabilities, when the frame carries them (never a feature).
"LightGBM without encoder features" is `fit_ranker(..., use_encoder_features=False)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.rankers.features import (
    CATEGORICAL, DAY_AHEAD_ORACLE_BY_TASK, NUMERIC, ORACLE_BY_TASK, _category_keys, labels_for,
)


@dataclass
class PopularityBaseline:
    """Beta-smoothed per-ad rate: (positives + strength * prior) / (rows + strength)."""

    smoothing_strength: float = 50.0
    prior: float = 0.0
    rate_by_ad: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    def fit(self, train: pd.DataFrame, task: str) -> "PopularityBaseline":
        labels = pd.Series(labels_for(train, task), index=train.index)
        self.prior = float(labels.mean())
        per_ad = labels.groupby(train["ad_id"]).agg(["sum", "size"])
        self.rate_by_ad = (per_ad["sum"] + self.smoothing_strength * self.prior) / (
            per_ad["size"] + self.smoothing_strength
        )
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["ad_id"].map(self.rate_by_ad).fillna(self.prior).to_numpy(dtype=float)


@dataclass
class LogisticRegressionBaseline:
    max_iter: int = 300
    pipeline: Pipeline | None = None

    @staticmethod
    def _inputs(frame: pd.DataFrame) -> pd.DataFrame:
        inputs = {name: _category_keys(frame[name]).fillna("__missing__") for name in CATEGORICAL}
        inputs.update({name: pd.to_numeric(frame[name], errors="coerce").astype(float) for name in NUMERIC})
        return pd.DataFrame(inputs, index=frame.index)

    def fit(self, train: pd.DataFrame, task: str) -> "LogisticRegressionBaseline":
        encoder = ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=20), CATEGORICAL),
            # Counts are heavy-tailed: median-impute then scale; the log is left to the trees.
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ])
        self.pipeline = make_pipeline(encoder, LogisticRegression(max_iter=self.max_iter, C=1.0))
        self.pipeline.fit(self._inputs(train), labels_for(train, task))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(self._inputs(frame))[:, 1]


class _LogisticMF(torch.nn.Module):
    def __init__(self, n_users: int, n_ads: int, dim: int):
        super().__init__()
        # Index 0 is "unseen": its factors stay at zero init and its bias is not trained apart.
        self.user_factors = torch.nn.Embedding(n_users + 1, dim)
        self.ad_factors = torch.nn.Embedding(n_ads + 1, dim)
        self.user_bias = torch.nn.Embedding(n_users + 1, 1)
        self.ad_bias = torch.nn.Embedding(n_ads + 1, 1)
        self.global_bias = torch.nn.Parameter(torch.zeros(1))
        for table in (self.user_factors, self.ad_factors):
            torch.nn.init.normal_(table.weight, std=0.01)
        for table in (self.user_bias, self.ad_bias):
            torch.nn.init.zeros_(table.weight)
        with torch.no_grad():
            self.user_factors.weight[0].zero_()
            self.ad_factors.weight[0].zero_()

    def forward(self, users: torch.Tensor, ads: torch.Tensor) -> torch.Tensor:
        interaction = (self.user_factors(users) * self.ad_factors(ads)).sum(dim=1)
        return interaction + self.user_bias(users)[:, 0] + self.ad_bias(ads)[:, 0] + self.global_bias


@dataclass
class MatrixFactorizationBaseline:
    """Logistic MF on (user_key, ad_id): the collaborative signal with no side features."""

    dim: int = 8
    epochs: int = 40
    learning_rate: float = 0.05
    weight_decay: float = 1e-3  # tuned on synthetic data: 1e-4 overfits users with ~30 rows
    batch_size: int = 65_536
    seed: int = 0
    user_index: dict = field(default_factory=dict)
    ad_index: dict = field(default_factory=dict)
    model: _LogisticMF | None = None

    def _indices(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        users = np.array(frame["user_key"].map(self.user_index).fillna(0), dtype=np.int64)
        ads = np.array(frame["ad_id"].map(self.ad_index).fillna(0), dtype=np.int64)
        return torch.from_numpy(users), torch.from_numpy(ads)

    def fit(self, train: pd.DataFrame, task: str) -> "MatrixFactorizationBaseline":
        torch.manual_seed(self.seed)
        self.user_index = {key: i + 1 for i, key in enumerate(pd.unique(train["user_key"]))}
        self.ad_index = {key: i + 1 for i, key in enumerate(pd.unique(train["ad_id"]))}
        users, ads = self._indices(train)
        labels = torch.from_numpy(labels_for(train, task).astype(np.float32))
        self.model = _LogisticMF(len(self.user_index), len(self.ad_index), self.dim)
        with torch.no_grad():
            base_rate = float(labels.mean().clamp(1e-4, 1 - 1e-4))
            self.model.global_bias.fill_(np.log(base_rate / (1 - base_rate)))
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            order = torch.randperm(len(labels), generator=generator)
            for start in range(0, len(labels), self.batch_size):
                batch = order[start:start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(self.model(users[batch], ads[batch]), labels[batch])
                loss.backward()
                optimizer.step()
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        users, ads = self._indices(frame)
        with torch.no_grad():
            return torch.sigmoid(self.model(users, ads)).numpy().astype(float)


def oracle_predictions(frame: pd.DataFrame, task: str, day_ahead: bool = False) -> np.ndarray | None:
    """The simulator's true probability for `task`, or None when the frame has no ground truth."""
    column = (DAY_AHEAD_ORACLE_BY_TASK if day_ahead else ORACLE_BY_TASK)[task]
    return frame[column].to_numpy(dtype=float) if column in frame.columns else None
