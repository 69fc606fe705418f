"""The oracle, kept apart from the landing data: true probabilities for any user, ad, day, hour, slot."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.simulator.world import BID_TYPES, OBJECTIVES, World

IMPRESSIONS_FILE = "impressions.parquet"
EXTRA_IMPRESSIONS_GLOB = "impressions-*.parquet"  # days served after the simulation (the closed loop)
IMPRESSIONS_SCHEMA = pa.schema([
    ("impression_id", pa.int64()), ("user_id", pa.int64()), ("ad_id", pa.int64()), ("ts", pa.timestamp("us")),
    ("slot", pa.int32()), ("true_pctr", pa.float64()), ("true_pcvr", pa.float64()),
    ("creative_id", pa.int64()),  # null when the ad has no creatives
])
ORACLE_CHUNK_ROWS = 100_000  # bounds the (rows x categories) interest matrix


class ImpressionLog:
    """Appends each day's impressions with their true probabilities to one Parquet file."""

    def __init__(self, ground_truth_dir: Path) -> None:
        ground_truth_dir.mkdir(parents=True, exist_ok=True)
        self.path = ground_truth_dir / IMPRESSIONS_FILE
        self._writer = pq.ParquetWriter(self.path, IMPRESSIONS_SCHEMA, compression="zstd")

    def append(self, columns: dict[str, np.ndarray]) -> None:
        arrays = [columns[field.name] if isinstance(columns[field.name], pa.Array)
                  else pa.array(columns[field.name], type=field.type) for field in IMPRESSIONS_SCHEMA]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=IMPRESSIONS_SCHEMA))

    def close(self) -> None:
        self._writer.close()


def extra_impressions_path(ground_truth_dir: Path, day: dt.date) -> Path:
    return Path(ground_truth_dir) / f"impressions-{day.isoformat()}.parquet"


class GroundTruth:
    """True pCTR/pCVR of the simulated world, by public ids.

    `true_probabilities` is what a day-ahead policy could at best know: the click probability is
    averaged over the session intent (drawn from the day's interest), so it equals the expectation
    of the per-impression `true_pctr` in impressions.parquet, which was drawn knowing the intent.
    """

    def __init__(self, world: World, ground_truth_dir: Path | None = None) -> None:
        self.world = world
        self.ground_truth_dir = ground_truth_dir

    @classmethod
    def load(cls, ground_truth_dir: Path | str) -> "GroundTruth":
        ground_truth_dir = Path(ground_truth_dir)
        return cls(World.load(ground_truth_dir), ground_truth_dir)

    @property
    def start_date(self) -> dt.date:
        return self.world.config.start_date

    def day_index(self, days: object) -> np.ndarray:
        """Day offsets from the first simulated day; accepts dates, strings, datetime64 or timestamps."""
        as_days = pd.to_datetime(pd.Series(np.asarray(days).ravel()), errors="raise").to_numpy().astype("datetime64[D]")
        return (as_days - np.datetime64(self.start_date, "D")).astype(np.int64)

    def _positions(self, kind: str, ids: object, size: int) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).ravel()
        positions = ids - World.ids(kind, 0)
        unknown = (positions < 0) | (positions >= size)
        if unknown.any():
            raise ValueError(f"unknown {kind}_id values (not in the simulated world): {np.unique(ids[unknown])[:10].tolist()}")
        return positions

    def true_probabilities(
        self, user_ids: object, ad_ids: object, days: object, hours: object, slots: object
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row-wise (pctr, pcvr) for showing ad to user on day at hour in slot (1-based)."""
        user_idx = self._positions("user", user_ids, self.world.n_users)
        ad_idx = self._positions("ad", ad_ids, self.world.n_ads)
        day_idx = self.day_index(days)
        hour = np.asarray(hours, dtype=np.int64).ravel()
        slot = np.asarray(slots, dtype=np.int64).ravel()
        n = len(user_idx)
        if not (len(ad_idx) == len(day_idx) == len(hour) == len(slot) == n):
            raise ValueError(
                f"inputs must have equal lengths: users={n}, ads={len(ad_idx)}, days={len(day_idx)}, "
                f"hours={len(hour)}, slots={len(slot)}"
            )
        if n and (hour.min() < 0 or hour.max() > 23):
            raise ValueError(f"hours must be in 0..23, got range {hour.min()}..{hour.max()}")
        share = self.category_interest(user_idx, day_idx, self.world.ad_category[ad_idx])
        pctr, pcvr = np.empty(n), np.empty(n)
        for lo in range(0, n, ORACLE_CHUNK_ROWS):
            part = slice(lo, lo + ORACLE_CHUNK_ROWS)
            u, a = user_idx[part], ad_idx[part]
            logit = self.world.click_logit(share[part], u, a, hour[part])
            pctr[part] = self.world.expected_pctr(logit, share[part], slot[part])
            pcvr[part] = self.world.pcvr(share[part], u, a)
        return pctr, pcvr

    def category_interest(self, user_idx: np.ndarray, day_idx: np.ndarray, category: np.ndarray) -> np.ndarray:
        """Interest share of each row's user in the row's category, computed once per distinct (user, day)."""
        if len(user_idx) == 0:
            return np.zeros(0)
        key = (day_idx - day_idx.min()) * self.world.n_users + user_idx
        unique_key, pair_of_row = np.unique(key, return_inverse=True)
        pair_user = unique_key % self.world.n_users
        pair_day = unique_key // self.world.n_users + day_idx.min()
        interest = np.empty((len(unique_key), self.world.n_categories), dtype=np.float32)
        for lo in range(0, len(unique_key), ORACLE_CHUNK_ROWS):
            part = slice(lo, lo + ORACLE_CHUNK_ROWS)
            interest[part] = self.world.interest(pair_user[part], pair_day[part])
        return interest[pair_of_row, category].astype(np.float64)

    def ad_table(self) -> pd.DataFrame:
        """One row per ad with what value computations need: value = bid*pctr (cpc) or bid*pctr*pcvr (cpa)."""
        w = self.world
        campaign = w.ad_campaign
        is_cpa = w.campaign_is_cpa[campaign]
        start = np.datetime64(self.start_date, "D")
        return pd.DataFrame({
            "ad_id": w.ids("ad", np.arange(w.n_ads)),
            "campaign_id": w.ids("campaign", campaign),
            "advertiser_id": w.ids("advertiser", w.campaign_advertiser[campaign]),
            "category_id": w.ids("category", w.ad_category),
            "brand_id": w.ids("brand", w.ad_brand),
            "price": w.ad_price,
            "bid": w.campaign_bid[campaign],
            "bid_type": BID_TYPES[is_cpa.astype(int)],
            "objective": OBJECTIVES[is_cpa.astype(int)],
            "daily_budget": w.campaign_daily_budget[campaign],
            "start_date": start + w.campaign_start_day[campaign],
            "end_date": start + w.campaign_end_day[campaign],
        })

    def impressions(self) -> pd.DataFrame:
        if self.ground_truth_dir is None:
            raise ValueError("this GroundTruth was built in memory; load it from a directory to read impressions")
        paths = [self.ground_truth_dir / IMPRESSIONS_FILE, *sorted(self.ground_truth_dir.glob(EXTRA_IMPRESSIONS_GLOB))]
        return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)

    def creative_ctr(self, impression_ids: object, creative_ids: object) -> np.ndarray:
        """Row-wise: the click probability logged impression `impression_ids` would have had with creative
        `creative_ids` instead of the one it showed (same user, moment, intent and slot; the log's
        `true_pctr` with the shown creative's appeal swapped for this one's)."""
        log = self.impressions().set_index("impression_id")
        rows = log.reindex(pd.Index(np.asarray(impression_ids, dtype=np.int64)))
        if rows["true_pctr"].isna().any():
            raise ValueError("some impression_ids are not in the ground-truth impression log")
        world = self.world
        shown = rows["creative_id"].fillna(World.ids("creative", 0) - 1).to_numpy(np.int64) - World.ids("creative", 0)
        target = np.asarray(creative_ids, dtype=np.int64) - World.ids("creative", 0)
        position = world.position_factor(rows["slot"].to_numpy(np.int64))
        probability = np.clip(rows["true_pctr"].to_numpy(float) / position, 1e-12, 1 - 1e-12)
        base_logit = np.log(probability / (1 - probability)) - world.appeal_of(shown)
        return position / (1 + np.exp(-(base_logit + world.appeal_of(target))))
