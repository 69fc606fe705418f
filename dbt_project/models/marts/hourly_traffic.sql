-- Share of all events (behavior and ad clicks up to D) by hour of day; all 24 hours present.
with hours as (
    select cast(range as integer) as hour from range(24)
),

hourly as (
    select cast(hour(ts) as integer) as hour, count(*) as events
    from {{ ref('user_event_stream') }}
    group by all
)

select
    hours.hour,
    coalesce(hourly.events, 0) as events,
    coalesce(hourly.events / sum(hourly.events) over (), 0.0) as share
from hours
left join hourly on hours.hour = hourly.hour
order by hours.hour
