-- Per user and calendar day: organic behavior, sessions started and ad exposure. The rolling
-- windows of user_profiles are sums over these rows.
with behavior as (
    select
        user_key,
        event_date as activity_date,
        count(*) as behavior_events,
        count(*) filter (where event_type = 'view') as views,
        count(*) filter (where event_type = 'click') as item_clicks,
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'fav') as favs,
        count(*) filter (where event_type = 'buy') as buys
    from {{ ref('stg_raw__behavior_events') }}
    group by all
),

sessions as (
    select user_key, session_date as activity_date, count(*) as sessions
    from {{ ref('int_sessions') }}
    group by all
),

ad_exposure as (
    select
        user_key,
        event_date as activity_date,
        count(*) filter (where event_type = 'impression') as ad_impressions,
        count(*) filter (where event_type = 'click') as ad_clicks,
        count(*) filter (where event_type = 'conversion') as ad_conversions
    from {{ ref('stg_raw__ad_events') }}
    group by all
),

unioned as (
    select * from behavior
    union all by name
    select * from sessions
    union all by name
    select * from ad_exposure
)

select
    user_key,
    activity_date,
    coalesce(sum(behavior_events), 0) as behavior_events,
    coalesce(sum(views), 0) as views,
    coalesce(sum(item_clicks), 0) as item_clicks,
    coalesce(sum(carts), 0) as carts,
    coalesce(sum(favs), 0) as favs,
    coalesce(sum(buys), 0) as buys,
    coalesce(sum(sessions), 0) as sessions,
    coalesce(sum(ad_impressions), 0) as ad_impressions,
    coalesce(sum(ad_clicks), 0) as ad_clicks,
    coalesce(sum(ad_conversions), 0) as ad_conversions
from unioned
group by user_key, activity_date
