"""Score one user's scheduled candidates now, in about a millisecond: the features the schedule was
scored with are encoded once at load (the float matrix LightGBM reads); a request copies the user's
rows, rewrites the live behavior columns and the encoder's outputs, and runs the champions' own
booster and calibrator (`ml.rankers.ranker_model`). The daily schedule scores through the same
encoding, boosters and encoder, so with nothing new both give the same numbers (tests/test_serving.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ml.rankers.features import ENCODER_FEATURES
from ml.rankers.live_features import AFFINITY_FEATURES, LIVE_FEATURE_COLUMNS, behavior_features
from ml.scoring import ChampionScorer
from serving.history import UserHistory


@dataclass
class UserScores:
    pctr: np.ndarray | None  # None: no CTR champion (the schedule's popularity pCTR stands)
    pcvr: np.ndarray | None  # None: no CVR champion
    top_features: list[str] | None  # the CTR champion's top two SHAP features per row


class CandidateScorer:
    def __init__(self, scorer: ChampionScorer, features: pd.DataFrame):
        """`features`: every scheduled (user_key, ad_id) row with the rankers' columns, in the order
        requests slice it."""
        self.scorer = scorer
        frame = features.assign(**{column: np.nan for column in ENCODER_FEATURES if column not in features})
        # One matrix per distinct feature list (the CTR and CVR rankers usually share theirs): requests copy rows out.
        by_columns = {}
        for ranker in scorer.rankers.values():
            if tuple(ranker.model.features) not in by_columns:
                by_columns[tuple(ranker.model.features)] = ranker.model.encode(frame[ranker.input_columns])
        self.matrices = {task: by_columns[tuple(ranker.model.features)] for task, ranker in scorer.rankers.items()}
        self.positions = {task: {column: ranker.model.features.index(column)
                                 for column in [*LIVE_FEATURE_COLUMNS, *ENCODER_FEATURES]
                                 if column in ranker.model.features}
                          for task, ranker in scorer.rankers.items()}
        self.ad_keys = {key: pd.to_numeric(features[key]).to_numpy(dtype=float, na_value=np.nan)
                        for _, _, key in AFFINITY_FEATURES.values()}
        # Target embeddings per distinct ad (not per row: a catalog has far fewer ads than rows).
        ad_ids, self.ad_row = np.unique(features["ad_id"].to_numpy(dtype=np.int64), return_inverse=True)
        with torch.inference_mode():
            self.ad_vectors = {run: encoder.ad_vectors(pd.Series(ad_ids)) for run, encoder in scorer.encoders.items()}

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
        scores = UserScores(None, None, None)
        for task, ranker in self.scorer.rankers.items():
            matrix = self.matrices[task][rows].copy()
            columns = {**live, **encoded[self.scorer.encoder_run_by_task[task]]}
            for column, position in self.positions[task].items():
                matrix[:, position] = columns[column]
            probability = np.clip(ranker.model.predict_encoded(matrix) * self.scorer.level_factors[task], 0.0, 1.0)
            setattr(scores, f"p{task}", probability)
            if task == "ctr":
                scores.top_features = [", ".join(names) for names in ranker.model.top_feature_names(matrix, 2)]
        return scores
