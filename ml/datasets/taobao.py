"""Taobao display-ad dataset ("Ad Display/Click Data on Taobao.com", Alimama) → landing contract.

The four published CSVs map onto the five landing tables of ARCHITECTURE.md:

| published file   | landing table(s)            |
|------------------|-----------------------------|
| raw_sample.csv   | ad_events (impressions + clicks) |
| behavior_log.csv | behavior_events             |
| ad_feature.csv   | ads, campaigns              |
| user_profile.csv | users                       |

Mapping decisions (also returned in `AdapterReport.notes`):

* Times are UTC. The published unix seconds cover the Beijing-time (UTC+8) days
  2017-05-06..2017-05-13; read as UTC, that window starts at 2017-05-05 16:00, so the ad events
  land in the UTC partitions 2017-05-05..2017-05-13. UTC is the contract's clock everywhere else
  (simulator, serving), so no local-time shift is applied.
* Every raw_sample row is one impression (`impression_id` = 1-based data-row number, event_id =
  2 x impression_id); `clk = 1` adds a click (event_id = 2 x impression_id + 1) one second after it,
  which can fall on the next day's partition. Slot: pid 430548_1007 → 1, 430539_1007 → 2.
  Propensity is null: the logging policy is unknown.
* The dataset has no bids or budgets. Campaign bids are SYNTHETIC: a CPC of
  `SYNTHETIC_CPC_SHARE_OF_PRICE` x the median price of the campaign's ads, clipped to
  [`SYNTHETIC_MIN_BID`, `SYNTHETIC_MAX_BID`]; `daily_budget` = `SYNTHETIC_CLICKS_PER_DAY` x bid.
  All campaigns are objective=click, bid_type=cpc; a click costs its campaign's bid.
  Campaign dates span the first landed event day to CAMPAIGN_DAYS_PAST_LOG days after the last.
* Behavior events have no item in the dataset: `item_id` = `NO_ITEM` (-1). btag pv → view;
  cart, fav, buy keep their names. event_id = 1-based data-row number of behavior_log.csv.
* Users: final_gender_code 1 → M, 2 → F, else U; age_band = "level_<age_level>" (the dataset
  publishes levels, not ages); city_tier = new_user_class_level, empty → `UNKNOWN_CITY_TIER` (0);
  occupation 1 → "college_student", 0 → "other". cms_segid, cms_group_id, pvalue_level and
  shopping_level have no contract column and are dropped. Users that appear in events without a
  profile row land with unknown attributes so every event user exists. first_seen = UTC day of the
  user's first event (or the first landed day when the user has none).
* NULL brand / category → -1. Dimension tables (users, campaigns, ads) land once, on the first
  landed event day, so they exist before any event refers to them. Every day from the first to the
  last event day gets a file for both event tables (empty when that day had none: the published
  behavior log starts about two weeks before the ad log) so each day is a complete delivery.

The event CSVs are streamed in chunks (behavior_log.csv has ~700M rows) into one Parquet file per
table and day; nothing but per-user first-seen days is kept across chunks.

This module also holds the landing writer and `AdapterReport` that the MovieLens adapter reuses.
"""
from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.ingest.contract import CONTRACTS

# Landing contract as Arrow schemas, derived from the one declaration in ml.ingest.contract:
# DuckDB reads a tz-less Parquet timestamp as TIMESTAMP (values are UTC), date32 as DATE.
ARROW_TYPE_BY_SQL_TYPE = {
    "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
    "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"), "BOOLEAN": pa.bool_(),
}
LANDING_SCHEMAS: dict[str, pa.Schema] = {
    table: pa.schema([(c.name, ARROW_TYPE_BY_SQL_TYPE[c.sql_type]) for c in contract.columns])
    for table, contract in CONTRACTS.items()
}
# Dimensions are moved into landing/ before events: the landing sensor treats a day as complete
# once both event tables are there, so their dimensions must already be in place.
LANDING_ORDER = ("users", "campaigns", "ads", "behavior_events", "ad_events")
EVENT_TABLES = ("behavior_events", "ad_events")
EPOCH = dt.date(1970, 1, 1)
SECONDS_PER_DAY = 86_400


def epoch_day_to_date(epoch_day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(epoch_day))


# Logs carry no flight dates: campaigns are taken to run on past the last logged day, so the day
# after it (the first schedule the product writes) has campaigns in flight.
CAMPAIGN_DAYS_PAST_LOG = 30


def campaign_end_date(last_logged_day: dt.date) -> dt.date:
    return last_logged_day + dt.timedelta(days=CAMPAIGN_DAYS_PAST_LOG)


def date_to_epoch_day(day: dt.date) -> int:
    return (day - EPOCH).days


@dataclass
class AdapterReport:
    """What an adapter wrote: rows and days per table, rows left out and why, synthetic choices."""

    source: str
    data_root: Path
    rows_by_table: dict[str, int] = field(default_factory=dict)
    days_by_table: dict[str, list[dt.date]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.source} → {self.data_root / 'landing'}"]
        for table in LANDING_ORDER:
            days = self.days_by_table.get(table, [])
            span = f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "no days"
            lines.append(f"  {table:<16} {self.rows_by_table.get(table, 0):>12,} rows  {span}")
        lines += [f"  {name}: {value:,}" for name, value in sorted(self.counts.items())]
        lines += [f"  dropped {reason}: {count:,}" for reason, count in sorted(self.dropped.items())]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


class LandingWriter:
    """Streams contract rows into one Parquet file per table and day, then lands them atomically.

    Files are written under `<data_root>/.adapter_staging/<name>/` and moved into
    `<data_root>/landing/<table>/date=YYYY-MM-DD/<name>.parquet` only by `commit()`, so the landing
    sensor never sees a half-written day. Landing again replaces this adapter's earlier files
    (same `<name>.parquet`) and leaves files from other sources alone.
    """

    def __init__(self, data_root: Path, name: str):
        self.data_root = Path(data_root)
        self.name = name
        self.staging_dir = self.data_root / ".adapter_staging" / name
        self._writers: dict[tuple[str, int], pq.ParquetWriter] = {}
        self._rows: dict[tuple[str, int], int] = {}
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _staging_file(self, table: str, epoch_day: int) -> Path:
        day = epoch_day_to_date(epoch_day).isoformat()
        return self.staging_dir / table / f"date={day}" / f"{self.name}.parquet"

    def write(self, table: str, rows: pd.DataFrame, epoch_days: np.ndarray) -> None:
        """Append rows (contract columns) to the files of the days given row by row."""
        if len(rows) == 0:
            return
        schema = LANDING_SCHEMAS[table]
        optional = [c.name for c in CONTRACTS[table].columns if not c.required and c.name not in rows.columns]
        rows = rows.assign(**{name: None for name in optional})  # the log has no such field: NULL
        missing = [c for c in schema.names if c not in rows.columns]
        if missing:
            raise ValueError(f"{table}: rows lack contract columns {missing}")
        arrow_rows = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
        epoch_days = np.asarray(epoch_days, dtype=np.int64)
        for epoch_day in np.unique(epoch_days):
            key = (table, int(epoch_day))
            writer = self._writers.get(key) or self._open(table, int(epoch_day))
            day_rows = arrow_rows.filter(pa.array(epoch_days == epoch_day))
            writer.write_table(day_rows)
            self._rows[key] += day_rows.num_rows

    def _open(self, table: str, epoch_day: int) -> pq.ParquetWriter:
        path = self._staging_file(table, epoch_day)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = self._writers[(table, epoch_day)] = pq.ParquetWriter(path, LANDING_SCHEMAS[table])
        self._rows[(table, epoch_day)] = 0
        return writer

    def write_on_day(self, table: str, rows: pd.DataFrame, day: dt.date) -> None:
        self.write(table, rows, np.full(len(rows), date_to_epoch_day(day), dtype=np.int64))

    def _close_all(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def fill_event_days(self) -> None:
        """Give both event tables a file (empty if need be) for every day from first to last.

        The landing sensor counts a day as delivered once behavior_events and ad_events both have
        a file for it; a day that simply had no ad events must still count.
        """
        event_days = [d for (table, d) in self._rows if table in EVENT_TABLES]
        if not event_days:
            return
        for epoch_day in range(min(event_days), max(event_days) + 1):
            for table in EVENT_TABLES:
                if (table, epoch_day) not in self._rows:
                    self._open(table, epoch_day)

    def commit(self, report: AdapterReport) -> None:
        """Close every file, replace this adapter's earlier landing files, record what landed."""
        self.fill_event_days()
        self._close_all()
        landing = self.data_root / "landing"
        for table in LANDING_ORDER:
            for old in landing.glob(f"{table}/date=*/{self.name}.parquet"):
                old.unlink()
        for table in LANDING_ORDER:
            keys = sorted(k for k in self._rows if k[0] == table)
            for _, epoch_day in keys:
                target = landing / table / f"date={epoch_day_to_date(epoch_day).isoformat()}"
                target.mkdir(parents=True, exist_ok=True)
                landed = target / f"{self.name}.parquet"
                shutil.move(self._staging_file(table, epoch_day), landed)
                report.files.append(landed)
            report.rows_by_table[table] = sum(self._rows[k] for k in keys)
            report.days_by_table[table] = [epoch_day_to_date(d) for _, d in keys]
        self._remove_staging()

    def _remove_staging(self) -> None:
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        try:
            self.staging_dir.parent.rmdir()  # only when no other adapter is staging
        except OSError:
            pass

    def abort(self) -> None:
        self._close_all()
        self._remove_staging()


class FirstSeenTracker:
    """Earliest epoch second per user across streamed chunks (for users.first_seen)."""

    def __init__(self) -> None:
        self._first = pd.Series(dtype="int64")

    def update(self, user_ids: pd.Series, epoch_seconds: pd.Series) -> None:
        chunk_first = epoch_seconds.groupby(user_ids.to_numpy()).min()
        self._first = pd.concat([self._first, chunk_first]).groupby(level=0).min()

    @property
    def first_seconds(self) -> pd.Series:
        return self._first


# ---------------------------------------------------------------------------------------------
# Taobao specifics
# ---------------------------------------------------------------------------------------------
PUBLISHED_HEADERS: dict[str, tuple[str, ...]] = {
    "raw_sample.csv": ("user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"),
    "ad_feature.csv": ("adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"),
    # The published file's last name is "new_user_class_level " (trailing space); names are
    # compared stripped so both that file and a cleaned copy are accepted.
    "user_profile.csv": (
        "userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level", "pvalue_level",
        "shopping_level", "occupation", "new_user_class_level",
    ),
    "behavior_log.csv": ("user", "time_stamp", "btag", "cate", "brand"),
}
SLOT_BY_PID = {"430548_1007": 1, "430539_1007": 2}
EVENT_TYPE_BY_BTAG = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "buy"}
GENDER_BY_CODE = {1: "M", 2: "F"}
OCCUPATION_BY_CODE = {1: "college_student", 0: "other"}
UNKNOWN_CITY_TIER = 0
UNKNOWN_ID = -1
NO_ITEM = -1
CLICK_DELAY_SECONDS = 1
SYNTHETIC_CPC_SHARE_OF_PRICE = 0.01
SYNTHETIC_MIN_BID = 0.05
SYNTHETIC_MAX_BID = 5.0
SYNTHETIC_CLICKS_PER_DAY = 500
DEFAULT_CHUNKSIZE = 1_000_000
LANDING_FILE_NAME = "taobao"


class TaobaoSourceError(ValueError):
    """The source folder does not hold the Taobao files as published."""


def check_taobao_source(source_dir: Path) -> dict[str, Path]:
    """Paths of the four published files; raises TaobaoSourceError on a missing file or bad header."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise TaobaoSourceError(f"Taobao source folder {source_dir} does not exist")
    paths = {}
    for file_name, expected in PUBLISHED_HEADERS.items():
        path = source_dir / file_name
        if not path.is_file():
            raise TaobaoSourceError(
                f"{file_name} is missing from {source_dir}: expected the four published files "
                f"{sorted(PUBLISHED_HEADERS)}"
            )
        with path.open(encoding="utf-8-sig") as handle:
            header_line = handle.readline().rstrip("\r\n")
        found = tuple(name.strip() for name in header_line.split(","))
        if found != expected:
            missing = [n for n in expected if n not in found]
            unexpected = [n for n in found if n not in expected]
            raise TaobaoSourceError(
                f"{path}: header {list(found)} does not match the published header {list(expected)}"
                f" (missing {missing}, unexpected {unexpected}, order must match)"
            )
        paths[file_name] = path
    return paths


def _read_csv_chunks(
    path: Path, dtypes: dict[str, str], chunksize: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first data-row number, chunk) pairs; parse failures name the file and the rows."""
    names = list(PUBLISHED_HEADERS[path.name])
    reader = pd.read_csv(
        path, header=0, names=names, usecols=list(dtypes), dtype=dtypes, na_values=["NULL"],
        keep_default_na=True, chunksize=chunksize, encoding="utf-8-sig",
    )
    first_row = 1
    while True:
        try:
            chunk = next(reader)
        except StopIteration:
            return
        except (ValueError, pd.errors.ParserError) as error:
            raise TaobaoSourceError(
                f"{path}: cannot parse data rows from {first_row} on (chunks of {chunksize}): {error}"
            ) from error
        yield first_row, chunk
        first_row += len(chunk)


def _require_known(path: Path, first_row: int, values: pd.Series, known, what: str) -> None:
    unknown = ~values.isin(list(known))
    if unknown.any():
        position = int(np.flatnonzero(unknown.to_numpy())[0])
        raise TaobaoSourceError(
            f"{path}: data row {first_row + position} has {what} {values.iloc[position]!r}; "
            f"expected one of {sorted(known)}"
        )


def _read_whole(path: Path, dtypes: dict[str, str], chunksize: int) -> pd.DataFrame:
    chunks = [chunk for _, chunk in _read_csv_chunks(path, dtypes, chunksize)]
    if not chunks:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})
    return pd.concat(chunks, ignore_index=True)


def read_ad_features(path: Path, chunksize: int = DEFAULT_CHUNKSIZE) -> pd.DataFrame:
    """ad_feature.csv (~850k rows, small enough to hold) with NULL brand as <NA>."""
    dtypes = {"adgroup_id": "int64", "cate_id": "Int64", "campaign_id": "int64",
              "customer": "int64", "brand": "Int64", "price": "float64"}
    ad_features = _read_whole(path, dtypes, chunksize)
    duplicated = ad_features["adgroup_id"].duplicated()
    if duplicated.any():
        raise TaobaoSourceError(
            f"{path}: adgroup_id {ad_features.loc[duplicated, 'adgroup_id'].iloc[0]} appears twice"
        )
    return ad_features


def ads_from_ad_features(ad_features: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "ad_id": ad_features["adgroup_id"],
        "campaign_id": ad_features["campaign_id"],
        "category_id": ad_features["cate_id"].fillna(UNKNOWN_ID).astype("int64"),
        "brand_id": ad_features["brand"].fillna(UNKNOWN_ID).astype("int64"),
        "price": ad_features["price"],
        "title": "adgroup " + ad_features["adgroup_id"].astype(str),
    })


def synthetic_campaigns(ad_features: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Campaign rows with SYNTHETIC cpc bids and budgets (the dataset publishes none).

    Returns the rows (without dates) and how many campaigns had ads of several customers; those
    take the customer with the most ads (smallest id on ties) as advertiser.
    """
    per_customer = (
        ad_features.groupby(["campaign_id", "customer"]).size().rename("ads").reset_index()
        .sort_values(["campaign_id", "ads", "customer"], ascending=[True, False, True])
    )
    advertiser = per_customer.drop_duplicates("campaign_id").set_index("campaign_id")["customer"]
    multi_customer = int((per_customer.groupby("campaign_id").size() > 1).sum())
    median_price = ad_features.groupby("campaign_id")["price"].median().fillna(0.0)
    bid = (median_price * SYNTHETIC_CPC_SHARE_OF_PRICE).clip(SYNTHETIC_MIN_BID, SYNTHETIC_MAX_BID)
    bid = bid.round(2)
    campaigns = pd.DataFrame({
        "campaign_id": bid.index.to_numpy(dtype="int64"),
        "advertiser_id": advertiser.reindex(bid.index).to_numpy(dtype="int64"),
        "objective": "click",
        "bid_type": "cpc",
        "bid": bid.to_numpy(),
        "daily_budget": (bid * SYNTHETIC_CLICKS_PER_DAY).round(2).to_numpy(),
    })
    return campaigns, multi_customer


def ad_events_from_raw_sample(
    chunk: pd.DataFrame, first_row: int, bid_by_ad: pd.Series
) -> tuple[pd.DataFrame, np.ndarray]:
    """Impressions (one per row) and clicks (clk = 1) of one raw_sample chunk, with epoch days."""
    impression_id = np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    seconds = chunk["time_stamp"].to_numpy(dtype=np.int64)
    slot = chunk["pid"].map(SLOT_BY_PID).to_numpy(dtype=np.int32)
    user_id = chunk["user"].to_numpy(dtype=np.int64)
    ad_id = chunk["adgroup_id"].to_numpy(dtype=np.int64)
    clicked = chunk["clk"].to_numpy() == 1
    click_cost = bid_by_ad.reindex(ad_id[clicked]).fillna(0.0).to_numpy()
    event_seconds = np.concatenate([seconds, seconds[clicked] + CLICK_DELAY_SECONDS])
    events = pd.DataFrame({
        "event_id": np.concatenate([2 * impression_id, 2 * impression_id[clicked] + 1]),
        "impression_id": np.concatenate([impression_id, impression_id[clicked]]),
        "user_id": np.concatenate([user_id, user_id[clicked]]),
        "ad_id": np.concatenate([ad_id, ad_id[clicked]]),
        "ts": pd.to_datetime(event_seconds, unit="s"),
        "event_type": ["impression"] * len(chunk) + ["click"] * int(clicked.sum()),
        "slot": np.concatenate([slot, slot[clicked]]),
        "cost": np.concatenate([np.zeros(len(chunk)), click_cost]),
        "propensity": np.full(len(event_seconds), np.nan),
    })
    return events, event_seconds // SECONDS_PER_DAY


def behavior_events_from_log(chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, np.ndarray]:
    seconds = chunk["time_stamp"].to_numpy(dtype=np.int64)
    events = pd.DataFrame({
        "event_id": np.arange(first_row, first_row + len(chunk), dtype=np.int64),
        "user_id": chunk["user"].to_numpy(dtype=np.int64),
        "ts": pd.to_datetime(seconds, unit="s"),
        "event_type": chunk["btag"].map(EVENT_TYPE_BY_BTAG).to_numpy(),
        "category_id": chunk["cate"].fillna(UNKNOWN_ID).to_numpy(dtype=np.int64),
        "brand_id": chunk["brand"].fillna(UNKNOWN_ID).to_numpy(dtype=np.int64),
        "item_id": np.full(len(chunk), NO_ITEM, dtype=np.int64),
    })
    return events, seconds // SECONDS_PER_DAY


def users_from_profiles(
    profiles: pd.DataFrame, first_seconds: pd.Series, default_first_seen: dt.date
) -> tuple[pd.DataFrame, int]:
    """Contract users from profile rows plus unknown-attribute rows for event users without one."""
    gender = profiles["final_gender_code"].map(GENDER_BY_CODE).fillna("U")
    age_band = ("level_" + profiles["age_level"].astype("string")).fillna("unknown")
    occupation = profiles["occupation"].map(OCCUPATION_BY_CODE).fillna("unknown")
    users = pd.DataFrame({
        "user_id": profiles["userid"].to_numpy(dtype=np.int64),
        "gender": gender.to_numpy(dtype=object),
        "age_band": age_band.to_numpy(dtype=object),
        "city_tier": profiles["new_user_class_level"].fillna(UNKNOWN_CITY_TIER).to_numpy(dtype=np.int32),
        "occupation": occupation.to_numpy(dtype=object),
    })
    without_profile = first_seconds.index.difference(pd.Index(users["user_id"]))
    unprofiled = pd.DataFrame({
        "user_id": without_profile.to_numpy(dtype=np.int64),
        "gender": "U",
        "age_band": "unknown",
        "city_tier": np.int32(UNKNOWN_CITY_TIER),
        "occupation": "unknown",
    })
    users = pd.concat([users, unprofiled], ignore_index=True)
    first_day = (first_seconds // SECONDS_PER_DAY).reindex(users["user_id"].to_numpy())
    default_day = date_to_epoch_day(default_first_seen)
    users["first_seen"] = first_day.fillna(default_day).to_numpy(dtype="int64").astype("datetime64[D]")
    return users, len(without_profile)


def taobao_to_landing(
    source_dir: Path, data_root: Path, chunksize: int = DEFAULT_CHUNKSIZE
) -> AdapterReport:
    """Map the published Taobao CSVs in `source_dir` to landing Parquet files under `data_root`.

    Writes `<data_root>/landing/<table>/date=YYYY-MM-DD/taobao.parquet` for the five contract
    tables (UTC days). Bids and budgets are synthetic (see the module docstring). Raises
    TaobaoSourceError for a missing file, a header that is not the published one, or values the
    published format cannot hold (unknown pid or btag, clk not 0/1, unparsable numbers).
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be positive, got {chunksize}")
    paths = check_taobao_source(source_dir)
    report = AdapterReport(source=f"taobao:{Path(source_dir)}", data_root=Path(data_root))
    ad_features = read_ad_features(paths["ad_feature.csv"], chunksize)
    campaigns, multi_customer = synthetic_campaigns(ad_features)
    bid_by_ad = (
        ad_features[["adgroup_id", "campaign_id"]]
        .merge(campaigns[["campaign_id", "bid"]], on="campaign_id")
        .set_index("adgroup_id")["bid"]
    )
    writer = LandingWriter(data_root, LANDING_FILE_NAME)
    try:
        first_seen = FirstSeenTracker()
        event_days: set[int] = set()
        counts = {"impressions": 0, "clicks": 0, "impressions_on_unknown_ads": 0, "behavior_rows": 0}

        raw_sample = paths["raw_sample.csv"]
        raw_dtypes = {"user": "int64", "time_stamp": "int64", "adgroup_id": "int64",
                      "pid": "string", "clk": "int64"}
        known_ads = pd.Index(ad_features["adgroup_id"])
        for first_row, chunk in _read_csv_chunks(raw_sample, raw_dtypes, chunksize):
            _require_known(raw_sample, first_row, chunk["pid"], SLOT_BY_PID, "pid")
            _require_known(raw_sample, first_row, chunk["clk"], (0, 1), "clk")
            events, days = ad_events_from_raw_sample(chunk, first_row, bid_by_ad)
            writer.write("ad_events", events, days)
            event_days.update(np.unique(days).tolist())
            first_seen.update(chunk["user"], chunk["time_stamp"])
            clicked = chunk["clk"] == 1
            counts["impressions"] += len(chunk)
            counts["clicks"] += int(clicked.sum())
            # Ingest quarantines events of ads it does not know (rule unknown_ad): say how many.
            counts["impressions_on_unknown_ads"] += int((~chunk["adgroup_id"].isin(known_ads)).sum())

        behavior_log = paths["behavior_log.csv"]
        log_dtypes = {"user": "int64", "time_stamp": "int64", "btag": "string",
                      "cate": "Int64", "brand": "Int64"}
        for first_row, chunk in _read_csv_chunks(behavior_log, log_dtypes, chunksize):
            _require_known(behavior_log, first_row, chunk["btag"], EVENT_TYPE_BY_BTAG, "btag")
            events, days = behavior_events_from_log(chunk, first_row)
            writer.write("behavior_events", events, days)
            event_days.update(np.unique(days).tolist())
            first_seen.update(chunk["user"], chunk["time_stamp"])
            counts["behavior_rows"] += len(chunk)

        if not event_days:
            raise TaobaoSourceError(f"{source_dir}: raw_sample.csv and behavior_log.csv hold no rows")
        first_day, last_day = epoch_day_to_date(min(event_days)), epoch_day_to_date(max(event_days))

        profile_dtypes = {"userid": "int64", "final_gender_code": "Int64", "age_level": "Int64",
                          "occupation": "Int64", "new_user_class_level": "Int64"}
        profiles = _read_whole(paths["user_profile.csv"], profile_dtypes, chunksize)
        duplicated_profiles = profiles["userid"].duplicated(keep="last")
        profiles = profiles[~duplicated_profiles]
        users, unprofiled = users_from_profiles(profiles, first_seen.first_seconds, first_day)
        writer.write_on_day("users", users, first_day)
        writer.write_on_day("campaigns", campaigns.assign(start_date=first_day, end_date=campaign_end_date(last_day)),
                            first_day)
        writer.write_on_day("ads", ads_from_ad_features(ad_features), first_day)
        writer.commit(report)
    except BaseException:
        writer.abort()
        raise

    report.counts.update(counts)
    report.counts["event_users_without_profile"] = unprofiled
    report.counts["campaigns_with_several_customers"] = multi_customer
    if duplicated_profiles.any():
        report.dropped["user_profile duplicate userid (last row kept)"] = int(duplicated_profiles.sum())
    report.notes += [
        "times are UTC: the published Beijing-time days 2017-05-06..2017-05-13 land in UTC "
        "partitions starting 2017-05-05 16:00",
        f"SYNTHETIC campaign bids: cpc = {SYNTHETIC_CPC_SHARE_OF_PRICE} x median ad price, clipped "
        f"to [{SYNTHETIC_MIN_BID}, {SYNTHETIC_MAX_BID}]; daily_budget = {SYNTHETIC_CLICKS_PER_DAY} "
        "x bid (the dataset publishes no bids or budgets)",
        f"a click lands {CLICK_DELAY_SECONDS}s after its impression and costs its campaign's bid; "
        "propensity is null (logging policy unknown)",
        f"behavior_events.item_id = {NO_ITEM}: the behavior log has no item; NULL brand/cate = {UNKNOWN_ID}",
        f"users: empty new_user_class_level → city_tier {UNKNOWN_CITY_TIER}; event users without a "
        "profile land with gender U and unknown attributes",
        f"dimension tables land on the first event day {first_day}",
    ]
    return report
