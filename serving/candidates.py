"""Score one user's scheduled candidates now, in about a millisecond: the features the schedule was
scored with are encoded once at load (the float matrix LightGBM reads); a request copies the user's
rows, rewrites the live behavior columns and the encoder's outputs, and runs the champions' own
booster and calibrator (`ml.rankers.ranker_model`). The daily schedule scores through the same
encoding, boosters and encoder, so with nothing new both give the same numbers (tests/test_serving.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ml.rankers.features import ENCODER_FEATURES, RESTRICTED_COLUMN
from ml.rankers.live_features import AFFINITY_FEATURES, LIVE_FEATURE_COLUMNS, behavior_features
from ml.scoring import ChampionScorer
from serving.history import UserHistory


@dataclass
class UserScores:
    pctr: np.ndarray | None  # None: no CTR champion (the schedule's popularity pCTR stands)
    pcvr: np.ndarray | None  # None: no CVR champion
    ctr_ranker: object | None = None  # the CTR champion's RankerModel and the rows it scored, to explain
    ctr_matrix: np.ndarray | None = None

    def explain(self, positions: list[int]) -> tuple[list[str], list[str]] | None:
        """The CTR champion's top two SHAP features ("a, b") and its largest positive contributions
        in words (ml.rankers.why) for the rows at `positions`: only the ads a request returns (TreeSHAP
        over every candidate cost more than the scores). None without a CTR champion."""
        if self.ctr_ranker is None:
            return None
        names, why = self.ctr_ranker.top_features_and_why(self.ctr_matrix[positions], 2)
        return [", ".join(pair) for pair in names], why


class CandidateScorer:
    def __init__(self, scorer: ChampionScorer, matrices: dict[str, np.ndarray], ad_keys: dict[str, np.ndarray],
                 ad_id: np.ndarray):
        """Every scheduled (user, ad) row in the order requests slice them: per task, the matrix its
        ranker reads (tasks with the same feature list share one); the ad's category and brand (float,
        NaN: none) the live features match on; the ad."""
        self.scorer, self.matrices, self.ad_keys, self.ad_id = scorer, matrices, ad_keys, ad_id
        self.positions = {task: {column: ranker.model.features.index(column)
                                 for column in [*LIVE_FEATURE_COLUMNS, *ENCODER_FEATURES]
                                 if column in ranker.model.features}
                          for task, ranker in scorer.rankers.items()}
        # Target embeddings per distinct ad (not per row: a catalog has far fewer ads than rows).
        ad_ids, self.ad_row = np.unique(ad_id, return_inverse=True)
        with torch.inference_mode():
            self.ad_vectors = {run: encoder.ad_vectors(pd.Series(ad_ids)) for run, encoder in scorer.encoders.items()}

    @staticmethod
    def columns_read(scorer: ChampionScorer) -> list[str]:
        """The candidate columns `from_batches` needs."""
        inputs = [column for ranker in scorer.rankers.values() for column in ranker.input_columns]
        return list(dict.fromkeys(["ad_id", *(key for _, _, key in AFFINITY_FEATURES.values()), *inputs,
                                   RESTRICTED_COLUMN]))

    @classmethod
    def from_batches(cls, scorer: ChampionScorer, batches: Iterable[pd.DataFrame], n_rows: int) -> "CandidateScorer":
        """Encoded batch by batch into matrices allocated once: the candidates of 100k users never
        sit in memory as a frame."""
        by_features = {tuple(ranker.model.features): ranker for ranker in scorer.rankers.values()}
        matrices = {features: np.empty((n_rows, len(features))) for features in by_features}
        ad_keys = {key: np.empty(n_rows) for _, _, key in AFFINITY_FEATURES.values()}
        ad_id, filled = np.empty(n_rows, dtype=np.int64), 0
        for frame in batches:
            rows = slice(filled, filled + len(frame))
            frame = frame.assign(**{column: np.nan for column in ENCODER_FEATURES if column not in frame})
            for features, ranker in by_features.items():
                matrices[features][rows] = ranker.model.encode(ranker.inputs(frame))
            for key, values in ad_keys.items():
                values[rows] = pd.to_numeric(frame[key]).to_numpy(dtype=float, na_value=np.nan)
            ad_id[rows] = frame["ad_id"].to_numpy(dtype=np.int64)
            filled += len(frame)
        if filled != n_rows:
            raise ValueError(f"{filled} candidate rows read, {n_rows} expected")
        return cls(scorer, {task: matrices[tuple(ranker.model.features)] for task, ranker in scorer.rankers.items()},
                   ad_keys, ad_id)

    def score(self, rows: slice, history: UserHistory, as_of_ns: int) -> UserScores:
        """The champions' scores of `rows` (one user's candidates) with `history` cut before `as_of_ns`."""
        live = behavior_features(history.events, {key: values[rows] for key, values in self.ad_keys.items()},
                                 as_of_ns)
        encoded = {}
        with torch.inference_mode():
            for run, encoder in self.scorer.encoders.items():
                sequence = history.tokens[run].sequence_before(as_of_ns, encoder.config.max_len,
                                                               encoder.config.gap_buckets)
                logit, similarity = encoder.score_user(sequence, self.ad_vectors[run][self.ad_row[rows]])
                encoded[run] = {"encoder_logit": logit, "encoder_similarity": similarity}
        scores = UserScores(None, None)
        for task, ranker in self.scorer.rankers.items():
            matrix = self.matrices[task][rows].copy()
            columns = {**live, **encoded[self.scorer.encoder_run_by_task[task]]}
            for column, position in self.positions[task].items():
                matrix[:, position] = columns[column]
            probability = np.clip(ranker.model.predict_encoded(matrix) * self.scorer.level_factors[task], 0.0, 1.0)
            setattr(scores, f"p{task}", probability)
            if task == "ctr":
                scores.ctr_ranker, scores.ctr_matrix = ranker.model, matrix
        return scores
