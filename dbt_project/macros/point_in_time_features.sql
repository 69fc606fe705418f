{#-
  The one definition of the ranking features, shared by ctr_training_set, cvr_training_set and
  candidate_features so training and scoring cannot drift apart.

  `base` is a CTE/relation with user_key, ad_id, feature_date, hour and slot. Every feature is read
  from the snapshot of feature_date, i.e. as of the START of that day: nothing that happened on or
  after feature_date can reach a feature. hours_since_* are measured to the start of feature_date
  (not to the impression time) because a candidate is scored before its hour is known.
-#}

{% macro feature_column_names() %}
    {{ return([
        'hour', 'slot', 'day_of_week',
        'gender', 'age_band', 'city_tier', 'occupation', 'user_tenure_days',
        'user_events_7d', 'user_buys_7d', 'user_ad_impressions_7d', 'user_ad_clicks_7d', 'user_ad_ctr_7d',
        'category_id', 'brand_id', 'price', 'bid', 'bid_type', 'objective',
        'ad_impressions_7d', 'ad_clicks_7d', 'ad_ctr_7d', 'ad_age_days',
        'user_category_events_7d', 'user_brand_events_7d',
        'hours_since_user_category_event', 'hours_since_user_brand_event',
    ]) }}
{% endmacro %}


{% macro point_in_time_features(base) %}
{%- set window_days = var('feature_window_days') %}
select
    base.* exclude (hour, slot),
    ad_snapshot.campaign_id as ad_campaign_id,
    ad_snapshot.advertiser_id,
    -- context
    cast(base.hour as integer) as hour,
    cast(base.slot as integer) as slot,
    cast(isodow(base.feature_date) as integer) as day_of_week,
    -- user
    user_snapshot.gender,
    user_snapshot.age_band,
    user_snapshot.city_tier,
    user_snapshot.occupation,
    user_snapshot.user_tenure_days,
    coalesce(user_snapshot.user_events_7d, 0) as user_events_7d,
    coalesce(user_snapshot.user_buys_7d, 0) as user_buys_7d,
    coalesce(user_snapshot.user_ad_impressions_7d, 0) as user_ad_impressions_7d,
    coalesce(user_snapshot.user_ad_clicks_7d, 0) as user_ad_clicks_7d,
    coalesce(user_snapshot.user_ad_ctr_7d, {{ smoothed_ctr('0', '0') }}) as user_ad_ctr_7d,
    -- ad
    ad_snapshot.category_id,
    ad_snapshot.brand_id,
    ad_snapshot.price,
    ad_snapshot.bid,
    ad_snapshot.bid_type,
    ad_snapshot.objective,
    coalesce(ad_snapshot.ad_impressions_7d, 0) as ad_impressions_7d,
    coalesce(ad_snapshot.ad_clicks_7d, 0) as ad_clicks_7d,
    coalesce(ad_snapshot.ad_ctr_7d, {{ smoothed_ctr('0', '0') }}) as ad_ctr_7d,
    ad_snapshot.ad_age_days,
    -- user x ad
    coalesce(category_now.cumulative_events, 0) - coalesce(category_window_start.cumulative_events, 0)
        as user_category_events_7d,
    coalesce(brand_now.cumulative_events, 0) - coalesce(brand_window_start.cumulative_events, 0)
        as user_brand_events_7d,
    date_diff('second', category_now.last_event_ts, cast(base.feature_date as timestamp)) / 3600.0
        as hours_since_user_category_event,
    date_diff('second', brand_now.last_event_ts, cast(base.feature_date as timestamp)) / 3600.0
        as hours_since_user_brand_event
from {{ base }} as base
left join {{ ref('user_profiles') }} as user_snapshot
    on base.user_key = user_snapshot.user_key
    and base.feature_date = user_snapshot.snapshot_date
left join {{ ref('ad_features') }} as ad_snapshot
    on base.ad_id = ad_snapshot.ad_id
    and base.feature_date = ad_snapshot.snapshot_date
-- Affinities are change rows: the latest one visible at feature_date gives the running total and
-- the last event; the latest one visible window_days earlier gives the total to subtract.
asof left join {{ ref('user_category_affinity') }} as category_now
    on base.user_key = category_now.user_key
    and ad_snapshot.category_id = category_now.category_id
    and base.feature_date >= category_now.valid_from
asof left join {{ ref('user_category_affinity') }} as category_window_start
    on base.user_key = category_window_start.user_key
    and ad_snapshot.category_id = category_window_start.category_id
    and base.feature_date - {{ window_days }} >= category_window_start.valid_from
asof left join {{ ref('user_brand_affinity') }} as brand_now
    on base.user_key = brand_now.user_key
    and ad_snapshot.brand_id = brand_now.brand_id
    and base.feature_date >= brand_now.valid_from
asof left join {{ ref('user_brand_affinity') }} as brand_window_start
    on base.user_key = brand_window_start.user_key
    and ad_snapshot.brand_id = brand_window_start.brand_id
    and base.feature_date - {{ window_days }} >= brand_window_start.valid_from
{% endmacro %}
