-- Behavior events plus ad clicks, one row per event. The encoder cuts point-in-time sequences from
-- it (everything strictly before a cut-off), so it stays a plain log; readers order it themselves
-- (user, ts, event id), a sort here would cost every build and guarantee nothing to a reader.
with behavior as (
    select
        user_key,
        event_ts as ts,
        event_date,
        event_type,
        item_id,
        category_id,
        brand_id,
        cast(null as bigint) as ad_id,
        event_id
    from {{ ref('stg_raw__behavior_events') }}
),

ad_versions as (
    select ad_id, category_id, brand_id, version_date from {{ ref('stg_raw__ads') }}
),

ad_clicks as (
    select
        clicks.user_key,
        clicks.event_ts as ts,
        clicks.event_date,
        'ad_click' as event_type,
        -- An ad click is not an organic item interaction; the ad id identifies what was clicked.
        cast(null as bigint) as item_id,
        ad_versions.category_id,
        ad_versions.brand_id,
        clicks.ad_id,
        clicks.event_id
    from {{ ref('stg_raw__ad_events') }} as clicks
    asof left join ad_versions
        on clicks.ad_id = ad_versions.ad_id
        and clicks.event_date >= ad_versions.version_date
    where clicks.event_type = 'click'
)

select * from behavior
union all
select * from ad_clicks
