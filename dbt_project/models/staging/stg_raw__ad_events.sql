-- Ad impressions, clicks and conversions, one row per event_id. Clicks and conversions carry the
-- impression_id they follow; attribution happens in int_attributed_impressions.
-- A table, not a view, so the hashing and the dedupe run once rather than once per reader.
{{ config(materialized='table') }}
with source as (
    select * from {{ source('raw', 'ad_events') }}
    where {{ landed_by_as_of_date() }}
),

-- Ingest makes one partition idempotent; an event re-sent in a later partition is kept once.
deduplicated as (
    {{ first_landed_copy_per_event('source') }}
),

{{ user_keys_of('deduplicated') }},

renamed as (
    select
        cast(source.event_id as bigint) as event_id,
        cast(source.impression_id as bigint) as impression_id,
        user_keys.user_key,
        cast(source.ad_id as bigint) as ad_id,
        cast(source.ts as timestamp) as event_ts,
        cast(source.ts as date) as event_date,
        lower(cast(source.event_type as varchar)) as event_type,
        cast(source.slot as integer) as slot,
        cast(source.cost as double) as cost,
        cast(source.propensity as double) as propensity,
        cast(source._partition_date as date) as partition_date,
        cast(source._loaded_at as timestamp) as loaded_at
    from deduplicated as source
    left join user_keys on source.user_id = user_keys.user_id
)

select * from renamed
