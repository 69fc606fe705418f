-- Ad impressions, clicks and conversions, one row per event_id. Clicks and conversions carry the
-- impression_id they follow; attribution happens in int_attributed_impressions.
-- A table, not a view, so the hashing and the dedupe run once rather than once per reader.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_stale_event_partitions(source('raw', 'ad_events')) }}",
) }}
-- Incremental by landing partition: see macros/incremental_event_staging.sql.
with source as (
    {{ event_partitions_to_stage(source('raw', 'ad_events')) }}
),

-- Ingest makes one partition idempotent; an event re-sent in a later partition is kept once.
deduplicated as (
    {{ first_landed_copy_per_event('source') }}
),

new_events as (
    {{ not_staged_before('deduplicated') }}
),

{{ user_keys_of('new_events') }},

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
        cast(source.creative_id as bigint) as creative_id,
        cast(source.creative_propensity as double) as creative_propensity,
        cast(source._partition_date as date) as partition_date,
        cast(source._loaded_at as timestamp) as loaded_at
    from new_events as source
    left join user_keys on source.user_id = user_keys.user_id
)

select * from renamed
