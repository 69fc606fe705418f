-- One row per impression with its click and last-click-attributed conversion outcomes.
-- Attribution uses ASOF joins (no correlated subqueries) so it stays linear in the event count.
with ad_events as (
    select * from {{ ref('stg_raw__ad_events') }}
),

impressions as (
    select
        impression_id,
        user_key,
        ad_id,
        event_ts as impression_ts,
        event_date as impression_date,
        slot,
        propensity,
        creative_id,
        creative_propensity,
        cost as impression_cost
    from ad_events
    where event_type = 'impression'
    -- An impression id logged twice (e.g. a retried beacon) is one impression.
    qualify row_number() over (partition by impression_id order by event_ts, event_id) = 1
),

-- A click belongs to its own impression, and only within the click window after it.
valid_clicks as (
    select
        impressions.impression_id,
        impressions.user_key,
        impressions.ad_id,
        clicks.event_ts as click_ts,
        clicks.cost as click_cost
    from ad_events as clicks
    inner join impressions
        on clicks.impression_id = impressions.impression_id
    where clicks.event_type = 'click'
        and clicks.event_ts >= impressions.impression_ts
        and clicks.event_ts <= impressions.impression_ts + interval {{ var('click_window_hours') }} hour
),

conversions as (
    select
        event_id as conversion_event_id,
        user_key,
        ad_id,
        event_ts as conversion_ts,
        cost as conversion_cost
    from ad_events
    where event_type = 'conversion'
),

-- Last-click attribution: the latest valid click of the same user on the same ad at or before
-- the conversion (the impression_id a conversion carries is not trusted over the click history).
last_click_before_conversion as (
    select
        conversions.*,
        valid_clicks.impression_id,
        valid_clicks.click_ts as attributed_click_ts
    from conversions
    asof inner join valid_clicks
        on conversions.user_key = valid_clicks.user_key
        and conversions.ad_id = valid_clicks.ad_id
        and conversions.conversion_ts >= valid_clicks.click_ts
),

attributed_conversions as (
    select *
    from last_click_before_conversion
    where conversion_ts <= attributed_click_ts + interval {{ var('attribution_window_days') }} day
),

click_totals as (
    select
        impression_id,
        min(click_ts) as click_ts,
        max(click_ts) as last_click_ts,
        count(*) as n_clicks,
        sum(click_cost) as click_cost
    from valid_clicks
    group by impression_id
),

conversion_totals as (
    select
        impression_id,
        min(conversion_ts) as conversion_ts,
        count(*) as n_conversions,
        sum(conversion_cost) as conversion_cost
    from attributed_conversions
    group by impression_id
),

ad_versions as (
    select ad_id, campaign_id, version_date from {{ ref('stg_raw__ads') }}
),

impressions_with_campaign as (
    select
        impressions.*,
        ad_versions.campaign_id
    from impressions
    -- The ad version in effect on the impression day.
    asof left join ad_versions
        on impressions.ad_id = ad_versions.ad_id
        and impressions.impression_date >= ad_versions.version_date
)

select
    impressions.impression_id,
    impressions.user_key,
    impressions.ad_id,
    impressions.campaign_id,
    impressions.impression_ts,
    impressions.impression_date,
    impressions.slot,
    impressions.propensity,
    impressions.creative_id,
    impressions.creative_propensity,
    click_totals.impression_id is not null as clicked,
    click_totals.click_ts,
    click_totals.last_click_ts,
    coalesce(click_totals.n_clicks, 0) as n_clicks,
    conversion_totals.impression_id is not null as converted,
    conversion_totals.conversion_ts,
    coalesce(conversion_totals.n_conversions, 0) as n_conversions,
    coalesce(impressions.impression_cost, 0) as impression_cost,
    coalesce(click_totals.click_cost, 0) as click_cost,
    coalesce(conversion_totals.conversion_cost, 0) as conversion_cost,
    coalesce(impressions.impression_cost, 0)
        + coalesce(click_totals.click_cost, 0)
        + coalesce(conversion_totals.conversion_cost, 0) as total_cost,
    -- Final = no later event can change the label any more: its window closed by the end of D.
    impressions.impression_ts + interval {{ var('click_window_hours') }} hour
        <= {{ as_of_end_ts() }} as click_label_final,
    impressions.impression_ts
        + interval {{ var('click_window_hours') }} hour
        + interval {{ var('attribution_window_days') }} day
        <= {{ as_of_end_ts() }} as conversion_label_final
from impressions_with_campaign as impressions
left join click_totals
    on impressions.impression_id = click_totals.impression_id
left join conversion_totals
    on impressions.impression_id = conversion_totals.impression_id
