"""Features from the ad's content: TF-IDF weights of the title terms many ads share.

An ad with no history has empty delivery features (no impressions, no clicks): without content the
ranker scores it by its category, brand and bid alone. Its title says more: "best seller", "clearance",
"free shipping" are shared across ads, and the ranker learns from the ads that ran what each of them
is worth, then reads them on the ad that has not. The vocabulary (terms and their IDF) is fitted on
the training ads' distinct titles and frozen in the ranker's FeatureSpec, like its categorical
levels: scoring frames get the same columns whatever titles they hold, and a registered model
carries it as JSON (no pickled vectorizer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

TITLE_COLUMN = "title"
TITLE_FEATURE_PREFIX = "title_"
MAX_TITLE_TERMS = 32
MIN_ADS_PER_TERM = 5  # a term on fewer training ads cannot be learned from: left out


def _vectorizer(vocabulary: list[str] | None = None, max_terms: int | None = None, min_ads: int = 1) -> TfidfVectorizer:
    # Words of two letters or more, lowercased; l2-normalised rows, as TF-IDF usually is.
    return TfidfVectorizer(vocabulary=vocabulary, max_features=max_terms, min_df=min_ads, lowercase=True,
                           token_pattern=r"(?u)\b[^\W\d_]{2,}\b")


@dataclass(frozen=True)
class TitleVocabulary:
    terms: list[str]
    idf: list[float]

    @classmethod
    def fit(cls, titles: pd.Series, max_terms: int = MAX_TITLE_TERMS,
            min_ads: int = MIN_ADS_PER_TERM) -> "TitleVocabulary | None":
        """The `max_terms` most frequent terms on at least `min_ads` distinct titles; None when no
        term qualifies (no titles, or titles that share no words)."""
        distinct = titles.dropna().astype(str).drop_duplicates()
        if len(distinct) < min_ads:
            return None
        vectorizer = _vectorizer(max_terms=max_terms, min_ads=min_ads)
        try:
            vectorizer.fit(distinct)
        except ValueError:  # "After pruning, no terms remain"
            return None
        terms = vectorizer.get_feature_names_out().tolist()
        return cls(terms=terms, idf=vectorizer.idf_.tolist())

    @property
    def feature_names(self) -> list[str]:
        return [f"{TITLE_FEATURE_PREFIX}{term}" for term in self.terms]

    def transform(self, titles: pd.Series) -> np.ndarray:
        """[rows, terms] TF-IDF weights; NaN for a row without a title (LightGBM's missing branch).
        Computed once per distinct title: candidate frames repeat each ad's title per user."""
        codes, distinct = pd.factorize(titles.astype("string"), use_na_sentinel=True)
        vectorizer = _vectorizer(vocabulary=self.terms)
        vectorizer.idf_ = np.asarray(self.idf)
        weights = np.full((len(distinct) + 1, len(self.terms)), np.nan)
        if len(distinct):
            weights[:-1] = vectorizer.transform(np.asarray(distinct, dtype=object)).toarray()
        return weights[codes]  # code -1 (no title) takes the last row: NaN

    def to_dict(self) -> dict[str, list]:
        return {"terms": list(self.terms), "idf": list(self.idf)}

    @classmethod
    def from_dict(cls, payload: dict[str, list] | None) -> "TitleVocabulary | None":
        return None if not payload else cls(terms=list(payload["terms"]), idf=[float(v) for v in payload["idf"]])


def title_term(feature: str) -> str | None:
    """The term behind a title feature's name; None for any other feature."""
    return feature[len(TITLE_FEATURE_PREFIX):] if feature.startswith(TITLE_FEATURE_PREFIX) else None
