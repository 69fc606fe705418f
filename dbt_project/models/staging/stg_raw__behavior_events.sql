-- Organic behavior events, one row per event_id.
with source as (
    select * from {{ source('raw', 'behavior_events') }}
    where {{ landed_by_as_of_date() }}
),

renamed as (
    select
        cast(event_id as bigint) as event_id,
        {{ pseudonymize('user_id') }} as user_key,
        cast(ts as timestamp) as event_ts,
        cast(ts as date) as event_date,
        lower(cast(event_type as varchar)) as event_type,
        cast(item_id as bigint) as item_id,
        cast(category_id as bigint) as category_id,
        cast(brand_id as bigint) as brand_id,
        cast(_partition_date as date) as partition_date,
        cast(_loaded_at as timestamp) as loaded_at
    from source
)

select * from renamed
-- Ingest makes one partition idempotent; an event re-sent in a later partition is kept once.
qualify row_number() over (partition by event_id order by partition_date, loaded_at desc) = 1
