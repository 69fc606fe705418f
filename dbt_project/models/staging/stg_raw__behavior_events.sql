-- Organic behavior events, one row per event_id.
-- A table, not a view: int_sessions, int_user_daily_activity and user_event_stream all read it,
-- and as a view each of them re-ran the hashing and the dedupe over every event.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_stale_event_partitions(source('raw', 'behavior_events')) }}",
) }}
-- Incremental by landing partition: see macros/incremental_event_staging.sql.
with source as (
    {{ event_partitions_to_stage(source('raw', 'behavior_events')) }}
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
        user_keys.user_key,
        cast(source.ts as timestamp) as event_ts,
        cast(source.ts as date) as event_date,
        lower(cast(source.event_type as varchar)) as event_type,
        cast(source.item_id as bigint) as item_id,
        cast(source.category_id as bigint) as category_id,
        cast(source.brand_id as bigint) as brand_id,
        cast(source._partition_date as date) as partition_date,
        cast(source._loaded_at as timestamp) as loaded_at
    from new_events as source
    left join user_keys on source.user_id = user_keys.user_id
)

select * from renamed
