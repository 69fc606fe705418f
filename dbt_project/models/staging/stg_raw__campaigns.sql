-- One row per campaign and landing day it was new or changed (a version).
with source as (
    select * from {{ source('raw', 'campaigns') }}
    where {{ landed_by_as_of_date() }}
),

renamed as (
    select
        cast(campaign_id as bigint) as campaign_id,
        cast(advertiser_id as bigint) as advertiser_id,
        lower(cast(objective as varchar)) as objective,
        lower(cast(bid_type as varchar)) as bid_type,
        cast(bid as double) as bid,
        cast(daily_budget as double) as daily_budget,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        -- Restricted categories (housing, employment, credit): no targeting by protected attributes.
        coalesce(cast(restricted as boolean), false) as restricted,
        cast(_partition_date as date) as version_date,
        cast(_loaded_at as timestamp) as loaded_at
    from source
)

select * from renamed
qualify row_number() over (partition by campaign_id, version_date order by loaded_at desc) = 1
