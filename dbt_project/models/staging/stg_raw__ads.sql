-- One row per ad and landing day it was new or changed (a version).
with source as (
    select * from {{ source('raw', 'ads') }}
    where {{ landed_by_as_of_date() }}
),

renamed as (
    select
        cast(ad_id as bigint) as ad_id,
        cast(campaign_id as bigint) as campaign_id,
        cast(category_id as bigint) as category_id,
        cast(brand_id as bigint) as brand_id,
        cast(price as double) as price,
        cast(title as varchar) as title,
        cast(_partition_date as date) as version_date,
        cast(_loaded_at as timestamp) as loaded_at
    from source
)

select * from renamed
qualify row_number() over (partition by ad_id, version_date order by loaded_at desc) = 1
