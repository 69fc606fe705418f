-- Sessionization of behavior events: a gap of more than session_gap_minutes starts a new session
-- (a gap of exactly the threshold stays in the same session).
-- One sorted window pass marks each event as a session start and/or end and keeps running
-- counters; a second, much smaller pass over the boundary events pairs each start with its end.
-- This avoids a second sort and a GROUP BY over all events (the dominant cost at 10M events).
{%- set gap = "interval " ~ var('session_gap_minutes') ~ " minute" %}
with events as (
    select event_id, user_key, event_ts, event_type
    from {{ ref('stg_raw__behavior_events') }}
),

marked as (
    select
        user_key,
        event_ts,
        event_type = 'buy' as is_buy,
        row_number() over by_user as event_number,
        sum(case when event_type = 'buy' then 1 else 0 end) over (by_user rows unbounded preceding) as buys_so_far,
        coalesce(event_ts - lag(event_ts) over by_user > {{ gap }}, true) as starts_session,
        coalesce(lead(event_ts) over by_user - event_ts > {{ gap }}, true) as ends_session
    from events
    window by_user as (partition by user_key order by event_ts, event_id)
),

-- After a start that is not also an end, the next boundary event is that session's end.
boundaries as (
    select
        *,
        sum(case when starts_session then 1 else 0 end) over (by_user rows unbounded preceding) as session_number,
        lead(event_ts) over by_user as next_boundary_ts,
        lead(event_number) over by_user as next_boundary_number,
        lead(buys_so_far) over by_user as next_boundary_buys_so_far
    from marked
    where starts_session or ends_session
    window by_user as (partition by user_key order by event_number)
),

sessions as (
    select
        user_key,
        session_number,
        event_ts as session_start,
        case when ends_session then event_ts else next_boundary_ts end as session_end,
        case when ends_session then 1 else next_boundary_number - event_number + 1 end as n_events,
        case when ends_session then 0 else next_boundary_buys_so_far - buys_so_far end
            + case when is_buy then 1 else 0 end as n_buys
    from boundaries
    where starts_session
)

select
    -- Keyed by user and start time so a session keeps its id when earlier history is trimmed.
    md5(user_key || '|' || cast(session_start as varchar)) as session_id,
    user_key,
    cast(session_number as bigint) as session_number,
    session_start,
    session_end,
    cast(session_start as date) as session_date,
    cast(n_events as bigint) as n_events,
    cast(n_buys as bigint) as n_buys,
    date_diff('second', session_start, session_end) as duration_seconds
from sessions
