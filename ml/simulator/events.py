"""Landing rows of the event tables, and ad events held as arrays until the day they land on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ml.simulator.behavior import BEHAVIOR_TYPES, BehaviorEvents
from ml.simulator.delivery import DayDelivery
from ml.simulator.writer import labels
from ml.simulator.world import World

AD_EVENT_TYPES = ("impression", "click", "conversion")
IMPRESSION, CLICK, CONVERSION = range(3)


def datetime_us(ts_us: np.ndarray) -> np.ndarray:
    return np.asarray(ts_us, dtype=np.int64).astype("datetime64[us]")


def behavior_rows(world: World, events: BehaviorEvents, first_event_id: int) -> dict[str, object]:
    return {
        "event_id": first_event_id + np.arange(len(events), dtype=np.int64),
        "user_id": world.ids("user", events.user_idx),
        "ts": datetime_us(events.ts_us),
        "event_type": labels(BEHAVIOR_TYPES.tolist(), events.event_type),
        "category_id": world.ids("category", world.item_category[events.item_idx]),
        "brand_id": world.ids("brand", world.item_brand[events.item_idx]),
        "item_id": world.ids("item", events.item_idx),
    }


@dataclass
class AdEventBatch:
    """Ad events as plain arrays, so events of one day can wait for the later day they land on."""

    event_id: np.ndarray
    impression_id: np.ndarray
    user_idx: np.ndarray
    ad_idx: np.ndarray
    ts_us: np.ndarray
    event_type: np.ndarray
    slot: np.ndarray
    cost: np.ndarray
    propensity: np.ndarray  # NaN for clicks and conversions: the policy chose the impression only
    creative_idx: np.ndarray  # the impression's creative (-1: none), on its clicks and conversions too
    creative_propensity: np.ndarray  # NaN for clicks and conversions, as propensity

    def take(self, rows: np.ndarray) -> "AdEventBatch":
        return AdEventBatch(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    @classmethod
    def concat(cls, batches: list["AdEventBatch"]) -> "AdEventBatch":
        return cls(**{name: np.concatenate([getattr(b, name) for b in batches]) for name in cls.__dataclass_fields__})

    def rows(self, world: World) -> dict[str, object]:
        order = np.argsort(self.ts_us, kind="stable")
        batch = self.take(order)
        return {
            "event_id": batch.event_id,
            "impression_id": batch.impression_id,
            "user_id": world.ids("user", batch.user_idx),
            "ad_id": world.ids("ad", batch.ad_idx),
            "ts": datetime_us(batch.ts_us),
            "event_type": labels(AD_EVENT_TYPES, batch.event_type),
            "slot": batch.slot,
            "cost": batch.cost,
            "propensity": pa.array(batch.propensity, type=pa.float64(), from_pandas=True),  # NaN -> null
            "creative_id": creative_ids(world, batch.creative_idx),
            "creative_propensity": pa.array(batch.creative_propensity, type=pa.float64(), from_pandas=True),
        }


def ad_event_batch(delivery: DayDelivery, first_event_id: int) -> AdEventBatch:
    n_imp, n_click, n_conv = delivery.n_impressions, len(delivery.click_ts_us), len(delivery.conversion_ts_us)
    impression_id = first_event_id + np.arange(n_imp, dtype=np.int64)
    event_id = first_event_id + np.arange(n_imp + n_click + n_conv, dtype=np.int64)
    source = np.concatenate([np.arange(n_imp), delivery.click_impression, delivery.conversion_impression])
    return AdEventBatch(
        event_id=event_id,
        impression_id=impression_id[source],
        user_idx=delivery.user_idx[source],
        ad_idx=delivery.ad_idx[source],
        ts_us=np.concatenate([delivery.ts_us, delivery.click_ts_us, delivery.conversion_ts_us]),
        event_type=np.repeat(np.array([IMPRESSION, CLICK, CONVERSION], dtype=np.int8), [n_imp, n_click, n_conv]),
        slot=delivery.slot[source].astype(np.int32),
        cost=np.concatenate([np.zeros(n_imp), delivery.click_cost, delivery.conversion_cost]),
        propensity=np.concatenate([delivery.propensity, np.full(n_click + n_conv, np.nan)]),
        creative_idx=delivery.creative_idx[source],
        creative_propensity=np.concatenate([delivery.creative_propensity, np.full(n_click + n_conv, np.nan)]),
    )


def creative_ids(world: World, creative_idx: np.ndarray) -> pa.Array:
    """Creative ids, null where the ad had none (-1)."""
    creative_idx = np.asarray(creative_idx, dtype=np.int64)
    return pa.array(world.ids("creative", np.maximum(creative_idx, 0)), type=pa.int64(), mask=creative_idx < 0)
