-- One row per user and landing day it was new or changed (a version); the latest version as of a
-- date wins downstream (ASOF joins on version_date).
with source as (
    select * from {{ source('raw', 'users') }}
    where {{ landed_by_as_of_date() }}
),

renamed as (
    select
        {{ pseudonymize('user_id') }} as user_key,
        cast(gender as varchar) as gender,
        cast(age_band as varchar) as age_band,
        cast(city_tier as integer) as city_tier,
        cast(occupation as varchar) as occupation,
        cast(first_seen as date) as first_seen,
        cast(_partition_date as date) as version_date,
        cast(_loaded_at as timestamp) as loaded_at
    from source
)

select * from renamed
-- A re-delivered file can repeat a user within one day: keep the last loaded row.
qualify row_number() over (partition by user_key, version_date order by loaded_at desc) = 1
