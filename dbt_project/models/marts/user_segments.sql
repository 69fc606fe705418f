-- The segment dynamic creative selection learns per (ml/creatives): the user's age band, latest as of
-- D ('unknown' without one). One definition for creative_stats and the schedule's creative draws.
select user_key, coalesce(age_band, 'unknown') as segment
from {{ ref('stg_raw__users') }}
qualify row_number() over (partition by user_key order by version_date desc, loaded_at desc) = 1
