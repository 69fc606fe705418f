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
        'ad_impressions_7d', 'ad_clicks_7d', 'ad_ctr_7d', 'ad_conversions_7d', 'ad_cvr_7d', 'ad_age_days',
        'user_category_events_7d', 'user_brand_events_7d',
        'hours_since_user_category_event', 'hours_since_user_brand_event',
    ]) }}
{% endmacro %}


{% macro point_in_time_features(base) %}
{%- set window_days = var('feature_window_days') %}
with with_ad_snapshot as (
    select
        base.*,
        ad_snapshot.campaign_id as ad_campaign_id,
        ad_snapshot.advertiser_id,
        ad_snapshot.category_id,
        ad_snapshot.brand_id,
        ad_snapshot.price,
        ad_snapshot.bid,
        ad_snapshot.bid_type,
        ad_snapshot.objective,
        ad_snapshot.ad_impressions_7d,
        ad_snapshot.ad_clicks_7d,
        ad_snapshot.ad_ctr_7d,
        ad_snapshot.ad_conversions_7d,
        ad_snapshot.ad_cvr_7d,
        ad_snapshot.ad_age_days,
        ad_snapshot.title,
        coalesce(ad_snapshot.restricted, false) as restricted
    from {{ base }} as base
    left join {{ ref('ad_features') }} as ad_snapshot
        on base.ad_id = ad_snapshot.ad_id
        and base.feature_date = ad_snapshot.snapshot_date
),

{%- for kind in ['category', 'brand'] %}

-- User x {{ kind }} history before the feature day, looked up once per distinct (user, {{ kind }},
-- day): a hash join on the affinity rows of earlier days and one aggregate. (Two ASOF joins on
-- the running totals give the same numbers at six times the cost.)
user_{{ kind }}_lookup as (
    select
        wanted.user_key,
        wanted.{{ kind }}_id,
        wanted.feature_date,
        cast(coalesce(sum(affinity.events) filter (
            where affinity.activity_date >= wanted.feature_date - {{ window_days }}
        ), 0) as bigint) as events_in_window,
        max(affinity.last_event_ts) as last_event_ts
    from (
        select distinct user_key, {{ kind }}_id, feature_date
        from with_ad_snapshot
        where {{ kind }}_id is not null
    ) as wanted
    inner join {{ ref('user_' ~ kind ~ '_affinity') }} as affinity
        on wanted.user_key = affinity.user_key
        and wanted.{{ kind }}_id = affinity.{{ kind }}_id
        and affinity.activity_date < wanted.feature_date
    group by all
){{ ',' if not loop.last }}
{%- endfor %}

select
    base.* exclude (
        hour, slot, category_id, brand_id, price, bid, bid_type, objective,
        ad_impressions_7d, ad_clicks_7d, ad_ctr_7d, ad_conversions_7d, ad_cvr_7d, ad_age_days
    ),
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
    base.category_id,
    base.brand_id,
    base.price,
    base.bid,
    base.bid_type,
    base.objective,
    coalesce(base.ad_impressions_7d, 0) as ad_impressions_7d,
    coalesce(base.ad_clicks_7d, 0) as ad_clicks_7d,
    coalesce(base.ad_ctr_7d, {{ smoothed_ctr('0', '0') }}) as ad_ctr_7d,
    coalesce(base.ad_conversions_7d, 0) as ad_conversions_7d,
    coalesce(base.ad_cvr_7d, {{ smoothed_cvr('0', '0') }}) as ad_cvr_7d,
    base.ad_age_days,
    -- user x ad
    coalesce(category_history.events_in_window, 0) as user_category_events_7d,
    coalesce(brand_history.events_in_window, 0) as user_brand_events_7d,
    date_diff('second', category_history.last_event_ts, cast(base.feature_date as timestamp)) / 3600.0
        as hours_since_user_category_event,
    date_diff('second', brand_history.last_event_ts, cast(base.feature_date as timestamp)) / 3600.0
        as hours_since_user_brand_event
from with_ad_snapshot as base
left join {{ ref('user_profiles') }} as user_snapshot
    on base.user_key = user_snapshot.user_key
    and base.feature_date = user_snapshot.snapshot_date
left join user_category_lookup as category_history
    on base.user_key = category_history.user_key
    and base.category_id = category_history.category_id
    and base.feature_date = category_history.feature_date
left join user_brand_lookup as brand_history
    on base.user_key = brand_history.user_key
    and base.brand_id = brand_history.brand_id
    and base.feature_date = brand_history.feature_date
{% endmacro %}
