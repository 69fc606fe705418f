-- Share of each user's events (behavior and ad clicks up to D) by hour of day, for pacing and for
-- the hour a candidate is scored at. Only hours with events are stored; missing hours have share 0.
with hourly as (
    select user_key, cast(hour(ts) as integer) as hour, count(*) as events
    from {{ ref('user_event_stream') }}
    group by all
)

select
    user_key,
    hour,
    events,
    events / sum(events) over (partition by user_key) as share,
    -- 1 = the user's most active hour; ties go to the earlier hour so the choice is deterministic.
    cast(row_number() over (partition by user_key order by events desc, hour) as integer) as activity_rank
from hourly
