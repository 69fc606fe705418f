"""simulate(): draw the world, then generate and write the landing files day by day.

Memory stays bounded by one day of events plus the conversions still waiting for their later day.
"""
from __future__ import annotations

import datetime as dt
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ml.settings import CONTRACT_TABLES
from ml.simulator.behavior import generate_behavior
from ml.simulator.config import SimulationConfig
from ml.simulator.continuation import Continuation
from ml.simulator.delivery import generate_delivery
from ml.simulator.creatives import CREATIVE_PHRASES
from ml.simulator.events import (AD_EVENT_TYPES, CONVERSION, AdEventBatch, ad_event_batch, behavior_rows, creative_ids,
                                 datetime_us)
from ml.simulator.ground_truth import ImpressionLog
from ml.simulator.sessions import MICROS_PER_DAY, generate_sessions
from ml.simulator.writer import clear_landing, labels, write_partition
from ml.simulator.world import (AGE_BANDS, BID_TYPES, CATEGORY_NAMES, GENDERS, OBJECTIVES, OCCUPATIONS, TITLE_TERMS, World,
                                build_world)

_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "to", "zu", "ne", "sa", "ri", "po", "lu")
_SLOGANS = ("new season", "limited offer", "free shipping", "best seller", "members save more", "just arrived")


@dataclass
class SimulationSummary:
    data_root: Path
    landing_dir: Path
    ground_truth_dir: Path
    file_format: str
    rows: dict[str, dict[dt.date, int]] = field(default_factory=lambda: {t: {} for t in CONTRACT_TABLES})
    ad_event_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AD_EVENT_TYPES, 0))
    conversions_after_last_day: int = 0
    files: list[Path] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def total_rows(self, table: str) -> int:
        return sum(self.rows[table].values())

    @property
    def total_events(self) -> int:
        return self.total_rows("behavior_events") + self.total_rows("ad_events")

    @property
    def click_through_rate(self) -> float:
        return self.ad_event_counts["click"] / max(self.ad_event_counts["impression"], 1)

    @property
    def conversion_rate(self) -> float:
        """Conversions per click, counting those that land after the last simulated day."""
        conversions = self.ad_event_counts["conversion"] + self.conversions_after_last_day
        return conversions / max(self.ad_event_counts["click"], 1)

    def format_table(self) -> str:
        days = sorted({day for counts in self.rows.values() for day in counts})
        header = ["date", *CONTRACT_TABLES]
        lines = [[day.isoformat(), *(str(self.rows[t].get(day, 0)) for t in CONTRACT_TABLES)] for day in days]
        lines.append(["total", *(str(self.total_rows(t)) for t in CONTRACT_TABLES)])
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
        render = lambda row: "  ".join(cell.rjust(width) for cell, width in zip(row, widths))  # noqa: E731
        body = [render(header), render(["-" * w for w in widths]), *map(render, lines)]
        counts = self.ad_event_counts
        body += [
            "",
            f"events total: {self.total_events:,} (behavior {self.total_rows('behavior_events'):,}, ad {self.total_rows('ad_events'):,})",
            f"impressions {counts['impression']:,}  clicks {counts['click']:,}  conversions {counts['conversion']:,} "
            f"(+{self.conversions_after_last_day:,} after the last day)  CTR {self.click_through_rate:.2%}  "
            f"CVR {self.conversion_rate:.2%}",
            f"landing: {self.landing_dir} ({self.file_format})",
            f"ground truth: {self.ground_truth_dir}",
            f"elapsed: {self.elapsed_seconds:.1f} s",
        ]
        return "\n".join(body)


def _brand_name(brand: int) -> str:
    n = len(_SYLLABLES)
    return (_SYLLABLES[brand % n] + _SYLLABLES[(brand // n) % n] + _SYLLABLES[(brand // n**2) % n]).capitalize()


def _title_words(world: World, ad: int) -> str:
    if world.ad_title_terms is None:  # a world saved before titles carried terms
        return _SLOGANS[ad % len(_SLOGANS)]
    return ", ".join(TITLE_TERMS[term][0] for term in world.ad_title_terms[ad])


def _category_name(category: int) -> str:
    return CATEGORY_NAMES[category] if category < len(CATEGORY_NAMES) else f"category {category + 1}"


def _dates(world: World, day_index: np.ndarray) -> np.ndarray:
    return np.datetime64(world.config.start_date, "D") + np.asarray(day_index, dtype=np.int64)


def users_rows(world: World, day_index: int) -> dict[str, object]:
    users = np.flatnonzero(world.user_first_seen_day == day_index)
    return {
        "user_id": world.ids("user", users),
        "gender": labels(GENDERS.tolist(), world.user_gender[users]),
        "age_band": labels(AGE_BANDS.tolist(), world.user_age_band[users]),
        "city_tier": world.user_city_tier[users],
        "occupation": labels(OCCUPATIONS.tolist(), world.user_occupation[users]),
        "first_seen": _dates(world, world.user_first_seen_day[users]),
    }


def campaign_rows(world: World, campaigns: np.ndarray) -> dict[str, object]:
    is_cpa = world.campaign_is_cpa[campaigns].astype(int)
    return {
        "campaign_id": world.ids("campaign", campaigns),
        "advertiser_id": world.ids("advertiser", world.campaign_advertiser[campaigns]),
        "objective": labels(OBJECTIVES.tolist(), is_cpa),
        "bid_type": labels(BID_TYPES.tolist(), is_cpa),
        "bid": world.campaign_bid[campaigns],
        "daily_budget": world.campaign_daily_budget[campaigns],
        "start_date": _dates(world, world.campaign_start_day[campaigns]),
        "end_date": _dates(world, world.campaign_end_day[campaigns]),
        "restricted": is_restricted(campaigns),
    }


def is_restricted(campaigns: np.ndarray) -> np.ndarray:
    """Every eighth campaign is in a restricted category (housing, employment, credit): fixed by
    position, so the flag draws nothing from the world's random streams."""
    return np.asarray(campaigns) % 8 == 1


def _ad_title(world: World, ad: int) -> str:
    return f"{_brand_name(int(world.ad_brand[ad]))} {_category_name(int(world.ad_category[ad]))}: {_title_words(world, ad)}"


def ad_rows(world: World, ads: np.ndarray) -> dict[str, object]:
    titles = [_ad_title(world, a) for a in ads]
    return {
        "ad_id": world.ids("ad", ads),
        "campaign_id": world.ids("campaign", world.ad_campaign[ads]),
        "category_id": world.ids("category", world.ad_category[ads]),
        "brand_id": world.ids("brand", world.ad_brand[ads]),
        "price": world.ad_price[ads],
        "title": titles,
    }


def creative_rows(world: World, ads: np.ndarray) -> dict[str, object]:
    """The creatives of `ads` (each ad's title with a variant phrase); none for ads without variants."""
    creatives = np.flatnonzero(np.isin(world.creative_ad, ads)) if world.creative_ad is not None else np.zeros(0, int)
    return {
        "creative_id": world.ids("creative", creatives),
        "ad_id": world.ids("ad", world.creative_ad[creatives]) if len(creatives) else np.zeros(0, np.int64),
        "title": [f"{_ad_title(world, int(world.creative_ad[c]))} | {CREATIVE_PHRASES[world.creative_phrase[c]]}"
                  for c in creatives],
    }


def simulate(config: SimulationConfig, data_root: Path, progress: bool = True) -> SimulationSummary:
    """Write landing files for every simulated day and the ground truth under data_root."""
    # The policy's matmuls are small; multi-threaded BLAS spins on them and is ~100x slower on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate(config, data_root, progress)


def _simulate(config: SimulationConfig, data_root: Path, progress: bool) -> SimulationSummary:
    started = time.perf_counter()
    data_root = Path(data_root)
    landing_dir, ground_truth_dir = data_root / "landing", data_root / "ground_truth"
    clear_landing(landing_dir)
    shutil.rmtree(ground_truth_dir, ignore_errors=True)

    world = build_world(config)
    world.save(ground_truth_dir)
    impression_log = ImpressionLog(ground_truth_dir)
    summary = SimulationSummary(data_root, landing_dir, ground_truth_dir, config.file_format)
    campaign_landing_day, ad_landing_day = world.campaign_landing_day(), world.ad_landing_day()
    start_us = int(np.datetime64(config.start_date, "us").astype(np.int64))
    waiting: dict[int, list[AdEventBatch]] = defaultdict(list)  # ad events landing on a later day
    next_event_id = 1

    days = tqdm(range(config.n_days), desc="simulating days", unit="day", disable=not progress)
    try:
        for d in days:
            day = config.day(d)
            day_start_us = start_us + d * MICROS_PER_DAY
            rng = np.random.default_rng([config.seed, 1, d])
            sessions = generate_sessions(world, d, day_start_us, rng)
            behavior = generate_behavior(world, sessions, rng)
            delivery = generate_delivery(world, sessions, rng)

            behavior_columns = behavior_rows(world, behavior, next_event_id)
            next_event_id += len(behavior)
            batch = ad_event_batch(delivery, next_event_id)
            next_event_id += len(batch.event_id)

            landing_day = (batch.ts_us - start_us) // MICROS_PER_DAY
            for later_day in np.unique(landing_day[landing_day > d]):
                waiting[int(later_day)].append(batch.take(np.flatnonzero(landing_day == later_day)))
            summary.conversions_after_last_day += int(((landing_day >= config.n_days) & (batch.event_type == CONVERSION)).sum())
            today = AdEventBatch.concat([batch.take(np.flatnonzero(landing_day == d)), *waiting.pop(d, [])])

            campaigns = np.flatnonzero(campaign_landing_day == d)
            ads = np.flatnonzero(ad_landing_day == d)
            tables = {
                "users": users_rows(world, d),
                "campaigns": campaign_rows(world, campaigns),
                "ads": ad_rows(world, ads),
                "creatives": creative_rows(world, ads),
                "behavior_events": behavior_columns,
                "ad_events": today.rows(world),
            }
            for table, columns in tables.items():
                summary.files.append(write_partition(landing_dir, table, day, columns, config.file_format))
                summary.rows[table][day] = len(next(iter(columns.values())))
            for code, name in enumerate(AD_EVENT_TYPES):
                summary.ad_event_counts[name] += int((today.event_type == code).sum())

            impression_log.append({
                "impression_id": batch.impression_id[: delivery.n_impressions],
                "user_id": world.ids("user", delivery.user_idx),
                "ad_id": world.ids("ad", delivery.ad_idx),
                "ts": datetime_us(delivery.ts_us),
                "slot": delivery.slot,
                "true_pctr": delivery.true_pctr,
                "true_pcvr": delivery.true_pcvr,
                "creative_id": creative_ids(world, delivery.creative_idx),
            })
            days.set_postfix(events=f"{summary.total_events:,}")
    finally:
        impression_log.close()
    # What a later served day (an A/B test, the closed loop) continues from: conversions still to land.
    Continuation(config.n_days, next_event_id, dict(waiting)).save(ground_truth_dir)
    summary.elapsed_seconds = time.perf_counter() - started
    return summary
