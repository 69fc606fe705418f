-- Sessionization of behavior events: a gap of more than session_gap_minutes starts a new session
-- (a gap of exactly the threshold stays in the same session).
with events as (
    select event_id, user_key, event_ts, event_type
    from {{ ref('stg_raw__behavior_events') }}
),

flagged as (
    select
        *,
        case
            when lag(event_ts) over by_user is null then 1
            when event_ts - lag(event_ts) over by_user > interval {{ var('session_gap_minutes') }} minute then 1
            else 0
        end as starts_session
    from events
    window by_user as (partition by user_key order by event_ts, event_id)
),

numbered as (
    select
        *,
        sum(starts_session) over (
            partition by user_key order by event_ts, event_id rows unbounded preceding
        ) as session_number
    from flagged
)

select
    -- Keyed by user and start time so a session keeps its id when earlier history is trimmed.
    md5(user_key || '|' || cast(min(event_ts) as varchar)) as session_id,
    user_key,
    session_number,
    min(event_ts) as session_start,
    max(event_ts) as session_end,
    cast(min(event_ts) as date) as session_date,
    count(*) as n_events,
    count(*) filter (where event_type = 'buy') as n_buys,
    date_diff('second', min(event_ts), max(event_ts)) as duration_seconds
from numbered
group by user_key, session_number
