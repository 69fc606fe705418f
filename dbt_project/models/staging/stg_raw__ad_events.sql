-- Ad impressions, clicks and conversions, one row per event_id. Clicks and conversions carry the
-- impression_id they follow; attribution happens in int_attributed_impressions.
with source as (
    select * from {{ source('raw', 'ad_events') }}
    where {{ landed_by_as_of_date() }}
),

renamed as (
    select
        cast(event_id as bigint) as event_id,
        cast(impression_id as bigint) as impression_id,
        {{ pseudonymize('user_id') }} as user_key,
        cast(ad_id as bigint) as ad_id,
        cast(ts as timestamp) as event_ts,
        cast(ts as date) as event_date,
        lower(cast(event_type as varchar)) as event_type,
        cast(slot as integer) as slot,
        cast(cost as double) as cost,
        cast(propensity as double) as propensity,
        cast(_partition_date as date) as partition_date,
        cast(_loaded_at as timestamp) as loaded_at
    from source
)

select * from renamed
qualify row_number() over (partition by event_id order by partition_date, loaded_at desc) = 1
