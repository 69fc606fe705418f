-- Every snapshot day from the first event day up to D + 1, so tomorrow's scoring has a snapshot.
with bounds as (
    select min(first_day) as first_day
    from (
        select min(event_date) as first_day from {{ ref('stg_raw__behavior_events') }}
        union all
        select min(event_date) from {{ ref('stg_raw__ad_events') }}
    )
)

select cast(day as date) as snapshot_date
from bounds,
    range(bounds.first_day, {{ as_of_date() }} + interval 2 day, interval 1 day) as days(day)
where bounds.first_day is not null
