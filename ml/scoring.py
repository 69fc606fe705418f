"""Score (user, ad) pairs with the champion rankers, each fed the features of the encoder it was
trained with, and scaled by its off-policy level factor. One code path for the daily schedule
and the real-time service, so both score exactly alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.allocation.reasons import build_reasons
from ml.model_store import RegisteredRanker, encoder_for_ranker, encoder_run_of, load_ranker
from ml.ordering import in_key_order
from ml.popularity import has_ad_counts, pooled_rate, popularity_rate
from ml.rankers.features import ENCODER_FEATURES
from ml.rankers.why import popular_ad_words
from ml.registry import CHAMPION
from ml.warehouse import table_exists

EXPLANATION_COLUMNS = ["top1_feature", "top2_feature", "why"]

RANKER_NAMES = {"ctr": "ctr_ranker", "cvr": "cvr_ranker"}
LEVEL_CORRECTIONS_TABLE = "ml.ranker_level_corrections"  # written by model_promotion
# Without a champion (none trained yet, or a first version refused), pCTR comes from the popularity
# scorer (ml/popularity.py) and pCVR is left NaN for ml/cvr_fallback.py to price CPA rows.
OPTIONAL_TASKS = frozenset({"ctr", "cvr"})


def read_level_factors(conn) -> dict[tuple[str, str], float]:
    """The latest off-policy level factor per (ranker name, version); empty before any promotion."""
    if not table_exists(conn, LEVEL_CORRECTIONS_TABLE):
        return {}
    rows = conn.sql(
        f"select model_name, model_version, factor from {LEVEL_CORRECTIONS_TABLE} "
        "qualify row_number() over (partition by model_name, model_version order by as_of_date desc) = 1"
    ).fetchall()
    return {(name, str(version)): float(factor) for name, version, factor in rows}


@dataclass
class ChampionScorer:
    rankers: dict[str, RegisteredRanker]  # task -> champion
    encoders: dict[str, object]  # encoder run id -> FittedEncoder
    encoder_run_by_task: dict[str, str]
    level_factors: dict[str, float]  # task -> factor (1.0 when none was estimated)

    @classmethod
    def load(cls, level_factors: dict[tuple[str, str], float] | None = None,
             alias: str | dict[str, str] = CHAMPION) -> "ChampionScorer":
        """Both rankers with `alias` (default: the champions; a dict gives one alias per task, e.g. the
        CVR challenger beside the CTR champion) and their encoders; call ml.registry.configure_mlflow first.

        `level_factors` maps (ranker name, version) to the factor model_promotion estimated.
        """
        rankers, encoders, runs = {}, {}, {}
        aliases = alias if isinstance(alias, dict) else dict.fromkeys(RANKER_NAMES, alias)
        for task, name in RANKER_NAMES.items():
            ranker = load_ranker(name, aliases[task])
            if ranker is None:
                continue  # no model yet or a refused first version: the fallback scores this task
            rankers[task], runs[task] = ranker, encoder_run_of(ranker)
            if runs[task] not in encoders:  # both rankers usually share one encoder
                encoders[runs[task]] = encoder_for_ranker(ranker)
        factors = {task: (level_factors or {}).get((ranker.name, str(ranker.version)), 1.0)
                   for task, ranker in rankers.items()}
        return cls(rankers, encoders, runs, factors)

    def score(self, features: pd.DataFrame, event_stream: pd.DataFrame, as_of: pd.Timestamp,
              explain: bool = True) -> pd.DataFrame:
        """`features` holds the rankers' columns per (user_key, ad_id); adds pctr, pcvr, versions,
        level factors and (with `explain`) the top two SHAP features of the CTR ranker. Without a CVR
        champion pcvr is NaN and its version None. Rows come back in (user_key, ad_id) order: the
        encoder scores in batches, so a fixed order keeps its floats identical however the caller
        read the features."""
        features = in_key_order(features, ["user_key", "ad_id"])
        scored = features.copy()
        pairs = features[["user_key", "ad_id"]]
        encoder_scores = {run: encoder.score_pairs(event_stream, pairs, as_of=as_of)
                          for run, encoder in self.encoders.items()}
        for task, ranker in self.rankers.items():
            inputs = features.drop(columns=ENCODER_FEATURES, errors="ignore").merge(
                encoder_scores[self.encoder_run_by_task[task]][["user_key", "ad_id", *ENCODER_FEATURES]],
                on=["user_key", "ad_id"], how="left")
            factor = self.level_factors[task]
            scored[f"p{task}"] = np.clip(ranker.predict(inputs) * factor, 0.0, 1.0)
            scored[f"{task}_ranker_version"] = ranker.version
            scored[f"{task}_level_factor"] = factor
            if task == "ctr":  # the CTR ranker's encoder inputs stay with the row: its explanation needs them
                scored[ENCODER_FEATURES] = inputs[ENCODER_FEATURES].to_numpy()
        for task in RANKER_NAMES.keys() - self.rankers.keys():
            scored[f"p{task}"], scored[f"{task}_ranker_version"], scored[f"{task}_level_factor"] = np.nan, None, 1.0
        if "ctr" not in self.rankers:
            scored["pctr"] = ctr_fallback(features)
        if explain:
            scored[EXPLANATION_COLUMNS] = self.explain(scored).to_numpy()
        return scored

    def explain(self, scored: pd.DataFrame) -> pd.DataFrame:
        """EXPLANATION_COLUMNS for rows of `score`'s output: the CTR ranker's top two SHAP features and
        its largest positive contributions in words; without a CTR ranker, the popularity score in words."""
        if "ctr" not in self.rankers:
            return pd.DataFrame({"top1_feature": None, "top2_feature": None,
                                 "why": [popular_ad_words(pctr) for pctr in scored["pctr"]]}, index=scored.index)
        return self.rankers["ctr"].explain(scored, top_k=2)[EXPLANATION_COLUMNS]


def explain_scheduled(scorer: ChampionScorer, scored: pd.DataFrame,
                      schedule: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explanations for the scheduled (user, ad) pairs only, into the scored candidates (other rows
    stay empty) and the schedule (its reason and why): TreeSHAP costs far more than a prediction,
    and the allocator keeps a fraction of the candidates."""
    keys = ["user_key", "ad_id"]
    scheduled = scored.merge(schedule[keys].drop_duplicates(), on=keys)
    if scheduled.empty:
        return scored.assign(**{column: None for column in EXPLANATION_COLUMNS}), schedule
    explained = scorer.explain(scheduled).reset_index(drop=True).assign(**{key: scheduled[key].to_numpy() for key in keys})
    scored = scored.drop(columns=EXPLANATION_COLUMNS, errors="ignore").merge(explained, on=keys, how="left")
    rows = schedule[[*keys, "source"]].merge(scored[[*keys, "category_id", *EXPLANATION_COLUMNS]], on=keys, how="left")
    return scored, schedule.assign(reason=build_reasons(rows).to_numpy(), why=rows["why"].to_numpy())


def ctr_fallback(features: pd.DataFrame) -> np.ndarray:
    """pCTR without a CTR champion: the ad's smoothed 7-day click rate (ml/popularity.py)."""
    if not has_ad_counts(features, "ctr"):
        raise RuntimeError("no CTR champion and the features carry no ad click counts to score with: materialize "
                           "model_promotion (it needs enough click labels, see ml/label_sufficiency.py)")
    prior = pooled_rate(features, "ctr")
    return popularity_rate(features, "ctr", prior if prior is not None else 0.0)
