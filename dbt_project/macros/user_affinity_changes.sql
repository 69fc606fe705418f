{#
  Point-in-time user x <dimension> affinity, stored as change rows (one per user, dimension value
  and day with events) rather than a dense daily grid, which would hold users x values x days rows.
  The snapshot on day S is built from the rows with activity_date < S: the features macro sums the
  last feature_window_days of them; a single reader can instead take the latest row with
  valid_from <= S (valid_from <= S < valid_to) and difference the running totals.
#}
{% macro user_affinity_changes(dimension) %}
with daily as (
    select
        user_key,
        {{ dimension }},
        event_date as activity_date,
        count(*) as events,
        count(*) filter (where event_type = 'buy') as buys,
        max(ts) as last_event_ts
    from {{ ref('user_event_stream') }}
    where {{ dimension }} is not null
    group by all
)

select
    user_key,
    {{ dimension }},
    activity_date,
    -- A day's events become visible at the start of the next day.
    cast(activity_date + interval 1 day as date) as valid_from,
    cast(lead(activity_date + interval 1 day) over by_pair as date) as valid_to,
    events,
    buys,
    last_event_ts,
    cast(sum(events) over (by_pair rows unbounded preceding) as bigint) as cumulative_events,
    cast(sum(buys) over (by_pair rows unbounded preceding) as bigint) as cumulative_buys
from daily
window by_pair as (partition by user_key, {{ dimension }} order by activity_date)
{% endmacro %}
