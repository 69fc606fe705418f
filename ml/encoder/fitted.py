"""A trained encoder and the scoring calls the orchestration layer makes with it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ml.encoder.config import EncoderConfig
from ml.encoder.device import resolve_device
from ml.encoder.model import InterestEncoder, ModelSizes
from ml.encoder.sequences import EventIndex, SequenceArrays, ad_tokens
from ml.ordering import in_key_order

WEIGHTS_FILE, META_FILE, ADS_FILE = "model.pt", "encoder.json", "ads.parquet"
IMPRESSION_CHUNK_ROWS = 200_000


class FittedEncoder:
    def __init__(self, model: InterestEncoder, config: EncoderConfig, ads: pd.DataFrame,
                 metrics: dict, history: list[dict]):
        self.model, self.config, self.ads = model.eval(), config, in_key_order(ads, ["ad_id"])
        self.metrics, self.history = metrics, history
        self.device_choice = resolve_device(config.device, config.precision)
        self.model.to(self.device_choice.device)

    # -- embeddings -------------------------------------------------------------------------------
    def _in_batches(self, fn, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        n_rows = len(next(iter(tensors.values())))
        size, outputs = self.config.batch_size * 4, []
        with torch.no_grad(), self.device_choice.autocast():
            for start in range(0, n_rows, size):
                batch = {k: self.device_choice.to_device(v[start:start + size]) for k, v in tensors.items()}
                outputs.append(fn(**batch).float().cpu())
        return torch.cat(outputs) if outputs else torch.zeros(0, self.config.d_model)

    def _user_vectors(self, sequences: SequenceArrays) -> torch.Tensor:
        return self._in_batches(self.model.encode, sequences.to_tensors())

    def _ad_vectors(self, ad_ids) -> torch.Tensor:
        tokens = {name: torch.from_numpy(values) for name, values in ad_tokens(ad_ids, self.ads, self.config).items()}
        return self._in_batches(self.model.embed_targets, tokens)

    def _logits(self, users: torch.Tensor, ads: torch.Tensor) -> np.ndarray:
        return self._in_batches(self.model.click_logit, {"user": users, "target": ads}).numpy()

    def _sequences_as_of(self, event_stream: pd.DataFrame, user_keys, as_of: pd.Timestamp) -> SequenceArrays:
        index = EventIndex.from_event_stream(event_stream, self.config)
        query_ts = pd.Series([pd.Timestamp(as_of)] * len(user_keys))
        return index.cut(pd.Series(user_keys), query_ts, self.config.max_len)

    # -- public scoring API -----------------------------------------------------------------------
    def score_impressions(self, event_stream: pd.DataFrame, impressions: pd.DataFrame,
                          chunk_rows: int = IMPRESSION_CHUNK_ROWS) -> pd.DataFrame:
        """Logit and cosine similarity per impression, each with the sequence cut before impression_ts.

        In chunks of `chunk_rows` impressions: the cut sequences are [rows, max_len] arrays, and all of
        a 100k-user world's impressions at once took the process past 23 GiB
        (benchmarks/daily_scale.py). Each row's numbers do not depend on the chunking."""
        index = EventIndex.from_event_stream(event_stream, self.config)
        parts = []
        for start in range(0, len(impressions), chunk_rows):
            rows = impressions.iloc[start:start + chunk_rows]
            users = self._user_vectors(index.cut(rows["user_key"], rows["impression_ts"], self.config.max_len))
            ads = self._ad_vectors(rows["ad_id"])
            parts.append(pd.DataFrame({
                "impression_id": rows["impression_id"].to_numpy(),
                "encoder_logit": self._logits(users, ads),
                "encoder_similarity": F.cosine_similarity(users, ads, dim=-1).numpy(),
            }))
        if not parts:
            return pd.DataFrame({"impression_id": impressions["impression_id"].to_numpy(),
                                 "encoder_logit": np.zeros(0, dtype=np.float32),
                                 "encoder_similarity": np.zeros(0, dtype=np.float32)})
        return pd.concat(parts, ignore_index=True)

    def score_pairs(self, event_stream: pd.DataFrame, pairs: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        """Candidates (user_key, ad_id) scored with every user's sequence cut at `as_of`."""
        user_codes, unique_users = pd.factorize(pairs["user_key"].astype(str), sort=True)  # batches by key
        users = self._user_vectors(self._sequences_as_of(event_stream, unique_users, as_of))[torch.from_numpy(user_codes)]
        ads = self._ad_vectors(pairs["ad_id"])
        return pd.DataFrame({
            "user_key": pairs["user_key"].to_numpy(), "ad_id": pairs["ad_id"].to_numpy(),
            "encoder_logit": self._logits(users, ads),
            "encoder_similarity": F.cosine_similarity(users, ads, dim=-1).numpy(),
        })

    def ad_vectors(self, ad_ids) -> torch.Tensor:
        """Each ad's target embedding, as score_pairs computes it (the service keeps its candidates')."""
        return self._ad_vectors(ad_ids)

    def score_user(self, sequence: SequenceArrays, ad_vectors: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """score_pairs for one user: (logit, cosine similarity) of its sequence (one row) against each ad."""
        user = self._user_vectors(sequence).expand(len(ad_vectors), -1)
        return self._logits(user, ad_vectors), F.cosine_similarity(user, ad_vectors, dim=-1).numpy()

    def user_embeddings(self, event_stream: pd.DataFrame, as_of: pd.Timestamp, user_keys=None) -> pd.DataFrame:
        """L2-normalised interest embedding per user (default: every user in the stream) as of `as_of`."""
        if user_keys is None:
            user_keys = np.sort(event_stream["user_key"].astype(str).unique())
        vectors = F.normalize(self._user_vectors(self._sequences_as_of(event_stream, user_keys, as_of)), dim=-1)
        return pd.DataFrame({"user_key": list(user_keys), "embedding": list(vectors.numpy().astype(np.float32))})

    def ad_embeddings(self) -> pd.DataFrame:
        """L2-normalised embedding per known ad: dot product with user_embeddings is the cosine."""
        vectors = F.normalize(self._ad_vectors(self.ads["ad_id"]), dim=-1)
        return pd.DataFrame({"ad_id": self.ads["ad_id"].to_numpy(),
                             "embedding": list(vectors.numpy().astype(np.float32))})

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, directory / WEIGHTS_FILE)
        self.ads.to_parquet(directory / ADS_FILE, index=False)
        meta = {"config": dataclasses.asdict(self.config), "sizes": dataclasses.asdict(self.model.sizes),
                "metrics": self.metrics, "history": self.history}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=float))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "FittedEncoder":
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        config = EncoderConfig(**meta["config"])
        if device is not None:
            config = dataclasses.replace(config, device=device)
        # Encoders saved before the input LayerNorm existed have no "input_norm" and no such weights.
        model = InterestEncoder(ModelSizes(**{"input_norm": False, **meta["sizes"]}))
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        return cls(model, config, pd.read_parquet(directory / ADS_FILE), meta["metrics"], meta["history"])
