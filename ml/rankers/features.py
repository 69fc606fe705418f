"""The ranker feature list in one place, and the frame LightGBM sees.

Columns follow ARCHITECTURE.md "Feature columns" (the dbt macro shared by ctr_training_set,
cvr_training_set and candidate_features). Categorical levels are frozen at training time in a
`FeatureSpec`, so scoring frames get the same integer codes as training; a level unseen in training
becomes NaN (LightGBM sends it down the "missing" branch) instead of silently shifting every code.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.rankers.content import TITLE_COLUMN, TitleVocabulary

CATEGORICAL: list[str] = [
    "gender", "age_band", "city_tier", "occupation",
    "category_id", "brand_id", "bid_type", "objective",
]
# hour, slot and day_of_week are ordinal: trees split them as numbers, which also lets the model
# interpolate for candidate rows scored with the user's most active hour.
NUMERIC: list[str] = [
    "hour", "slot", "day_of_week",
    "user_tenure_days", "user_events_7d", "user_buys_7d",
    "user_ad_impressions_7d", "user_ad_clicks_7d", "user_ad_ctr_7d",
    "price", "bid", "ad_impressions_7d", "ad_clicks_7d", "ad_ctr_7d",
    "ad_conversions_7d", "ad_cvr_7d", "ad_age_days",
    "user_category_events_7d", "user_brand_events_7d",
    "hours_since_user_category_event", "hours_since_user_brand_event",
]
ENCODER_FEATURES: list[str] = ["encoder_logit", "encoder_similarity"]
# Restricted categories (housing, employment, credit): the row's `restricted` flag hides the
# protected attributes from the model, and occupation with them (a proxy for age: students,
# retirees). The model then scores the row down the branch it learned for unknown users.
RESTRICTED_COLUMN = "restricted"
PROTECTED: list[str] = ["gender", "age_band", "occupation"]
# True where the encoder was fitted to the impression's click label (see ml.training_days.encoder_days).
ENCODER_SAW_LABEL = "label_seen_by_encoder"

LABEL_BY_TASK: dict[str, str] = {"ctr": "label_click", "cvr": "label_conversion"}
# The simulator's truth, never a feature. Per impression: drawn knowing the session's intent. Day
# ahead: averaged over the intent, the most any model scoring before the session could know.
ORACLE_BY_TASK: dict[str, str] = {"ctr": "true_pctr", "cvr": "true_pcvr"}
DAY_AHEAD_ORACLE_BY_TASK: dict[str, str] = {"ctr": "day_ahead_pctr", "cvr": "day_ahead_pcvr"}


def feature_names(use_encoder_features: bool = True) -> list[str]:
    return CATEGORICAL + NUMERIC + (ENCODER_FEATURES if use_encoder_features else [])


def labels_for(frame: pd.DataFrame, task: str) -> np.ndarray:
    """Binary labels of a task; 'ctcvr' is click and conversion on the same impression."""
    if task == "ctcvr":
        return (frame["label_click"].astype(int) & frame["label_conversion"].astype(int)).to_numpy()
    if task not in LABEL_BY_TASK:
        raise ValueError(f"task must be 'ctr', 'cvr' or 'ctcvr', got {task!r}")
    return frame[LABEL_BY_TASK[task]].astype(int).to_numpy()


def join_encoder_features(frame: pd.DataFrame, encoder_features: pd.DataFrame | None) -> pd.DataFrame:
    """Left-join the encoder's outputs by impression_id; rows the encoder did not score keep NaN.

    Where the encoder learned the impression's own label (`label_seen_by_encoder`), its outputs are
    in-sample and over-confident, so they are masked to NaN: stacked on them, a ranker would trust the
    encoder more than it deserves on new days.
    """
    if encoder_features is None:
        return frame
    duplicated = encoder_features["impression_id"].duplicated()
    if duplicated.any():
        raise ValueError(
            f"encoder features hold {int(duplicated.sum())} duplicated impression_id values; "
            "expected one row per impression"
        )
    kept = frame.drop(columns=[c for c in ENCODER_FEATURES if c in frame.columns])
    joined = kept.merge(encoder_features[["impression_id", *ENCODER_FEATURES]], on="impression_id", how="left")
    if ENCODER_SAW_LABEL in encoder_features.columns:
        saw_label = encoder_features.set_index("impression_id")[ENCODER_SAW_LABEL]
        in_sample = joined["impression_id"].map(saw_label).fillna(False).astype(bool).to_numpy()
        joined.loc[in_sample, ENCODER_FEATURES] = np.nan
    return joined


def restricted_rows(frame: pd.DataFrame) -> np.ndarray:
    """Per row: is its campaign restricted (no column: none is)."""
    if RESTRICTED_COLUMN not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame[RESTRICTED_COLUMN].fillna(False).astype(bool).to_numpy()


def _category_keys(values: pd.Series) -> pd.Series:
    """Canonical string keys, so 12 (int), 12.0 (float after a NULL) and '12' are one level."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        whole = numbers.dropna()
        if (whole == np.floor(whole)).all():
            return numbers.astype("Int64").astype("string").astype(object).where(numbers.notna(), np.nan)
        return numbers.astype("string").astype(object).where(numbers.notna(), np.nan)
    return values.astype("string").astype(object).where(values.notna(), np.nan)


@dataclass(frozen=True)
class FeatureSpec:
    """Ordered feature names plus the categorical levels seen in training (JSON-serialisable)."""

    features: list[str]
    categorical_levels: dict[str, list[str]] = field(default_factory=dict)
    # The title terms the content features weigh (ml.rankers.content); None: no content features.
    title_vocabulary: TitleVocabulary | None = None

    @property
    def categorical(self) -> list[str]:
        return [name for name in self.features if name in self.categorical_levels]

    @property
    def input_columns(self) -> list[str]:
        """The columns a frame to score needs: the features, with the title in place of its terms."""
        content = set(self.title_vocabulary.feature_names) if self.title_vocabulary else set()
        return [name for name in self.features if name not in content] + ([TITLE_COLUMN] if content else [])

    @classmethod
    def fit(cls, training_frame: pd.DataFrame, use_encoder_features: bool = True,
            extra_numeric: Sequence[str] = (), use_content_features: bool = True) -> "FeatureSpec":
        """`extra_numeric`: more numeric columns after the standard ones (experiments, e.g.
        benchmarks/ctr_information_ceiling.py; the pipeline never passes any). Content features
        (ml.rankers.content) when `use_content_features` and the frame has titles sharing terms."""
        vocabulary = None
        if use_content_features and TITLE_COLUMN in training_frame:
            vocabulary = TitleVocabulary.fit(training_frame.drop_duplicates("ad_id")[TITLE_COLUMN]
                                             if "ad_id" in training_frame else training_frame[TITLE_COLUMN])
        content = vocabulary.feature_names if vocabulary else []
        names = feature_names(use_encoder_features) + content + list(extra_numeric)
        missing = [name for name in names if name not in training_frame.columns and name not in content]
        if missing:
            hint = " (join encoder outputs with join_encoder_features or pass use_encoder_features=False)" \
                if set(missing) & set(ENCODER_FEATURES) else ""
            raise KeyError(f"training frame lacks feature columns {missing}{hint}")
        levels = {
            name: sorted(_category_keys(training_frame[name]).dropna().unique().tolist())
            for name in CATEGORICAL
        }
        return cls(features=names, categorical_levels=levels, title_vocabulary=vocabulary)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """LightGBM-ready frame: the spec's columns in order, categoricals with the frozen levels."""
        missing = [name for name in self.input_columns if name not in frame.columns]
        if missing:
            raise KeyError(f"frame to score lacks feature columns {missing}")
        columns: dict[str, pd.Series] = {}
        restricted = restricted_rows(frame)
        content = {}
        if self.title_vocabulary:
            weights = self.title_vocabulary.transform(frame[TITLE_COLUMN])
            content = {name: weights[:, i] for i, name in enumerate(self.title_vocabulary.feature_names)}
        for name in self.features:
            if name in content:
                columns[name] = pd.Series(content[name], index=frame.index)
            elif name in self.categorical_levels:
                keys = _category_keys(frame[name])
                if name in PROTECTED and restricted.any():
                    keys = keys.where(~restricted, np.nan)
                columns[name] = pd.Series(
                    pd.Categorical(keys, categories=self.categorical_levels[name]), index=frame.index
                )
            else:
                columns[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        return pd.DataFrame(columns, index=frame.index)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """`transform` as the float matrix LightGBM makes of it (categoricals as their level codes,
        an unseen level NaN): callers that score the same rows often encode them once."""
        transformed = self.transform(frame)
        matrix = np.empty((len(transformed), len(self.features)), dtype=np.float64)
        for position, name in enumerate(self.features):
            column = transformed[name]
            if name in self.categorical_levels:
                codes = column.cat.codes.to_numpy()
                matrix[:, position] = np.where(codes >= 0, codes, np.nan)
            else:
                matrix[:, position] = column.to_numpy()
        return matrix

    def to_dict(self) -> dict[str, object]:
        return {"features": list(self.features), "categorical_levels": self.categorical_levels,
                "title_vocabulary": self.title_vocabulary.to_dict() if self.title_vocabulary else None}

    @classmethod
    def from_dict(cls, payload: dict[str, object]) -> "FeatureSpec":
        return cls(features=list(payload["features"]), categorical_levels=dict(payload["categorical_levels"]),
                   title_vocabulary=TitleVocabulary.from_dict(payload.get("title_vocabulary")))
