-- The creative catalog as of D: one row per creative, its latest landed version (the table is
-- optional: a log without creatives stages no rows).
with source as (
    select * from {{ source('raw', 'creatives') }}
    where {{ landed_by_as_of_date() }}
)

select
    cast(creative_id as bigint) as creative_id,
    cast(ad_id as bigint) as ad_id,
    cast(title as varchar) as title,
    cast(_partition_date as date) as version_date
from source
qualify row_number() over (partition by creative_id order by _partition_date desc, _loaded_at desc) = 1
