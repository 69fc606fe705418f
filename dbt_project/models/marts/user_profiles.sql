-- User profile per snapshot day S, as of the START of S: event counts use days strictly before S;
-- demographics use the users version in effect on S (a user lands the day they first appear).
-- Rolling sums run over a dense user x day grid, so a ROWS frame of N rows is exactly N days.
{%- set window_days = var('feature_window_days') %}
with snapshot_dates as (
    select snapshot_date from {{ ref('int_snapshot_dates') }}
),

daily_activity as (
    select * from {{ ref('int_user_daily_activity') }}
),

user_versions as (
    select * from {{ ref('stg_raw__users') }}
),

users_first_known as (
    select user_key, min(first_known_date) as first_known_date
    from (
        select user_key, min(version_date) as first_known_date from user_versions group by user_key
        union all
        select user_key, min(activity_date) from daily_activity group by user_key
    )
    group by user_key
),

user_days as (
    select
        users_first_known.user_key,
        users_first_known.first_known_date,
        snapshot_dates.snapshot_date,
        coalesce(daily_activity.behavior_events, 0) as behavior_events,
        coalesce(daily_activity.views, 0) as views,
        coalesce(daily_activity.carts, 0) as carts,
        coalesce(daily_activity.favs, 0) as favs,
        coalesce(daily_activity.buys, 0) as buys,
        coalesce(daily_activity.sessions, 0) as sessions,
        coalesce(daily_activity.ad_impressions, 0) as ad_impressions,
        coalesce(daily_activity.ad_clicks, 0) as ad_clicks,
        coalesce(daily_activity.ad_conversions, 0) as ad_conversions,
        case when daily_activity.behavior_events > 0 then snapshot_dates.snapshot_date end as active_date
    from users_first_known
    cross join snapshot_dates
    left join daily_activity
        on users_first_known.user_key = daily_activity.user_key
        and snapshot_dates.snapshot_date = daily_activity.activity_date
),

windowed as (
    select
        user_key,
        first_known_date,
        snapshot_date,
        coalesce(sum(behavior_events) over prior_days, 0) as user_events_7d,
        coalesce(sum(views) over prior_days, 0) as user_views_7d,
        coalesce(sum(carts) over prior_days, 0) as user_carts_7d,
        coalesce(sum(favs) over prior_days, 0) as user_favs_7d,
        coalesce(sum(buys) over prior_days, 0) as user_buys_7d,
        coalesce(sum(sessions) over prior_days, 0) as user_sessions_7d,
        coalesce(sum(ad_impressions) over prior_days, 0) as user_ad_impressions_7d,
        coalesce(sum(ad_clicks) over prior_days, 0) as user_ad_clicks_7d,
        coalesce(sum(ad_conversions) over prior_days, 0) as user_ad_conversions_7d,
        max(active_date) over all_before as last_active_date
    from user_days
    window
        prior_days as (partition by user_key order by snapshot_date
            rows between {{ window_days }} preceding and 1 preceding),
        all_before as (partition by user_key order by snapshot_date
            rows between unbounded preceding and 1 preceding)
)

select
    windowed.user_key,
    windowed.snapshot_date,
    user_versions.gender,
    user_versions.age_band,
    user_versions.city_tier,
    user_versions.occupation,
    user_versions.first_seen,
    cast(date_diff('day', coalesce(user_versions.first_seen, windowed.first_known_date), windowed.snapshot_date) as integer)
        as user_tenure_days,
    cast(windowed.user_events_7d as bigint) as user_events_7d,
    cast(windowed.user_views_7d as bigint) as user_views_7d,
    cast(windowed.user_carts_7d as bigint) as user_carts_7d,
    cast(windowed.user_favs_7d as bigint) as user_favs_7d,
    cast(windowed.user_buys_7d as bigint) as user_buys_7d,
    cast(windowed.user_sessions_7d as bigint) as user_sessions_7d,
    cast(windowed.user_ad_impressions_7d as bigint) as user_ad_impressions_7d,
    cast(windowed.user_ad_clicks_7d as bigint) as user_ad_clicks_7d,
    cast(windowed.user_ad_conversions_7d as bigint) as user_ad_conversions_7d,
    {{ smoothed_ctr('windowed.user_ad_clicks_7d', 'windowed.user_ad_impressions_7d') }} as user_ad_ctr_7d,
    windowed.last_active_date,
    cast(date_diff('day', windowed.last_active_date, windowed.snapshot_date) as integer) as days_since_last_active
from windowed
asof left join user_versions
    on windowed.user_key = user_versions.user_key
    and windowed.snapshot_date >= user_versions.version_date
where windowed.snapshot_date >= windowed.first_known_date
