"""The raw data contract, declared once per landing table (see ARCHITECTURE.md, "Raw data contract").

Validation SQL (validate.py) and the raw table DDL (schema.py) are generated from these
declarations, so a contract change is a one-line edit here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ml.settings import CONTRACT_TABLES as SETTINGS_CONTRACT_TABLES

INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    # A file without a required column cannot be loaded at all; optional columns are filled with NULL.
    required: bool = True
    not_null: bool = False
    allowed_values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RangeRule:
    """`condition` is DuckDB SQL over the typed columns; a NULL result (missing input) passes."""

    column: str
    condition: str
    explanation: str

    @property
    def rule(self) -> str:
        return f"out_of_range:{self.column}"


@dataclass(frozen=True)
class Reference:
    """`column` must match `parent_key` of a row already loaded in raw.<parent_table> (same day or earlier)."""

    column: str
    parent_table: str
    parent_key: str
    rule: str


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    key_column: str
    # Events: `event_ts` must fall inside the partition day and the key is unique across all
    # partitions. Dimensions: the key may land again on a later day as an update.
    event_ts: str | None = None
    range_rules: tuple[RangeRule, ...] = ()
    references: tuple[Reference, ...] = field(default_factory=tuple)

    @property
    def is_event_table(self) -> bool:
        return self.event_ts is not None

    @property
    def duplicate_rule(self) -> str:
        return f"duplicate_{self.key_column}" if self.is_event_table else "duplicate_key"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def _key(name: str) -> Column:
    return Column(name, "BIGINT", not_null=True)


USERS = TableContract(
    name="users",
    key_column="user_id",
    columns=(
        _key("user_id"),
        Column("gender", "VARCHAR", allowed_values=("M", "F", "U")),
        Column("age_band", "VARCHAR"),
        Column("city_tier", "INTEGER"),
        Column("occupation", "VARCHAR"),
        Column("first_seen", "DATE"),
    ),
)

CAMPAIGNS = TableContract(
    name="campaigns",
    key_column="campaign_id",
    columns=(
        _key("campaign_id"),
        Column("advertiser_id", "BIGINT", not_null=True),
        Column("objective", "VARCHAR", not_null=True, allowed_values=("click", "conversion")),
        Column("bid_type", "VARCHAR", not_null=True, allowed_values=("cpc", "cpa")),
        Column("bid", "DOUBLE", not_null=True),
        Column("daily_budget", "DOUBLE", not_null=True),
        Column("start_date", "DATE", not_null=True),
        Column("end_date", "DATE", not_null=True),
        # Housing, employment, credit and the like: targeting by protected attributes is not allowed
        # (ml/rankers/features.py masks them). Optional; a file without it means not restricted.
        Column("restricted", "BOOLEAN", required=False),
    ),
    range_rules=(
        RangeRule("bid", '"bid" > 0', "bid > 0"),
        RangeRule("daily_budget", '"daily_budget" > 0', "daily_budget > 0"),
        RangeRule("end_date", '"end_date" >= "start_date"', "end_date >= start_date"),
    ),
)

ADS = TableContract(
    name="ads",
    key_column="ad_id",
    columns=(
        _key("ad_id"),
        Column("campaign_id", "BIGINT", not_null=True),
        Column("category_id", "BIGINT", not_null=True),
        Column("brand_id", "BIGINT", not_null=True),
        Column("price", "DOUBLE", not_null=True),
        Column("title", "VARCHAR"),
    ),
    range_rules=(RangeRule("price", '"price" >= 0', "price >= 0"),),
    references=(Reference("campaign_id", "campaigns", "campaign_id", "unknown_campaign"),),
)

# Optional: title variants of an ad for dynamic creative selection. A log without them (no landing
# folder at all) is complete; an ad without creatives is shown with its own title.
CREATIVES = TableContract(
    name="creatives",
    key_column="creative_id",
    columns=(
        _key("creative_id"),
        Column("ad_id", "BIGINT", not_null=True),
        Column("title", "VARCHAR", not_null=True),
    ),
    references=(Reference("ad_id", "ads", "ad_id", "unknown_ad"),),
)

BEHAVIOR_EVENTS = TableContract(
    name="behavior_events",
    key_column="event_id",
    event_ts="ts",
    columns=(
        _key("event_id"),
        Column("user_id", "BIGINT", not_null=True),
        Column("ts", "TIMESTAMP", not_null=True),
        Column("event_type", "VARCHAR", not_null=True, allowed_values=("view", "click", "cart", "fav", "buy")),
        # Public logs (e.g. Taobao) miss brand or category on some rows; downstream treats NULL as unknown.
        Column("category_id", "BIGINT"),
        Column("brand_id", "BIGINT"),
        Column("item_id", "BIGINT", not_null=True),
    ),
)

AD_EVENTS = TableContract(
    name="ad_events",
    key_column="event_id",
    event_ts="ts",
    columns=(
        _key("event_id"),
        Column("impression_id", "BIGINT", not_null=True),
        Column("user_id", "BIGINT", not_null=True),
        Column("ad_id", "BIGINT", not_null=True),
        Column("ts", "TIMESTAMP", not_null=True),
        Column("event_type", "VARCHAR", not_null=True, allowed_values=("impression", "click", "conversion")),
        Column("slot", "INTEGER", not_null=True),
        Column("cost", "DOUBLE", not_null=True),
        # Only logs from a randomized logging policy carry propensities.
        Column("propensity", "DOUBLE", required=False),
        # The creative shown (empty: the ad's own title) and the chance the creative selector picked it.
        Column("creative_id", "BIGINT", required=False),
        Column("creative_propensity", "DOUBLE", required=False),
    ),
    range_rules=(
        RangeRule("slot", '"slot" >= 1', "slot >= 1"),
        RangeRule("cost", '"cost" >= 0', "cost >= 0"),
        RangeRule("propensity", '"propensity" > 0 AND "propensity" <= 1', "propensity in (0, 1] or empty"),
        RangeRule("creative_propensity", '"creative_propensity" > 0 AND "creative_propensity" <= 1',
                  "creative_propensity in (0, 1] or empty"),
    ),
    references=(Reference("ad_id", "ads", "ad_id", "unknown_ad"),
                Reference("creative_id", "creatives", "creative_id", "unknown_creative")),
)

# Parents before children, so same-day references resolve against rows loaded moments earlier.
CONTRACT_TABLES: tuple[str, ...] = ("campaigns", "ads", "creatives", "users", "behavior_events", "ad_events")
CONTRACTS: dict[str, TableContract] = {
    contract.name: contract for contract in (CAMPAIGNS, ADS, CREATIVES, USERS, BEHAVIOR_EVENTS, AD_EVENTS)
}
# Tables a log may leave out entirely: no landing folder, no rows, nothing stale.
OPTIONAL_TABLES: tuple[str, ...] = ("creatives",)

assert set(CONTRACT_TABLES) == set(SETTINGS_CONTRACT_TABLES) == set(CONTRACTS), "contract tables drifted from ml.settings"


def get_contract(table: str) -> TableContract:
    try:
        return CONTRACTS[table]
    except KeyError:
        raise ValueError(f"Unknown landing table {table!r}; expected one of {', '.join(CONTRACT_TABLES)}") from None
