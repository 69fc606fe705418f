-- Every snapshot day from the first activity day up to D + 1, so tomorrow's scoring has a snapshot.
with bounds as (
    select min(activity_date) as first_day from {{ ref('int_user_daily_activity') }}
)

select cast(day as date) as snapshot_date
from bounds,
    range(bounds.first_day, {{ as_of_date() }} + interval 2 day, interval 1 day) as days(day)
where bounds.first_day is not null
