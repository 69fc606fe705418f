-- Reads several models: the meta names the one whose asset check it is (dagster-dbt needs it).
{{ config(meta={'dagster': {'ref': {'name': 'ctr_training_set'}}}) }}
-- Point-in-time guard: every user x ad recency feature of a training or candidate row must come
-- from an event strictly before the feature day (hours_since_* > 0), and the user's 7-day event
-- count must equal an independent recount of organic events in the days before the impression day.
{%- set window_days = var('feature_window_days') %}
with training_rows as (
    select impression_id, user_key, impression_date, user_events_7d,
        hours_since_user_category_event, hours_since_user_brand_event
    from {{ ref('ctr_training_set') }}
),

recency_from_the_future as (
    select impression_id, 'hours_since_* <= 0' as problem
    from training_rows
    where hours_since_user_category_event <= 0 or hours_since_user_brand_event <= 0
),

user_days as (
    select distinct user_key, impression_date from training_rows
),

recounted as (
    select user_days.user_key, user_days.impression_date, count(events.ts) as events_before_day
    from user_days
    -- Recounted from the event log, independently of int_user_daily_activity and user_profiles.
    left join {{ ref('user_event_stream') }} as events
        on user_days.user_key = events.user_key
        and events.event_type != 'ad_click'
        and events.ts >= user_days.impression_date - {{ window_days }}
        and events.ts < user_days.impression_date
    group by all
),

count_mismatch as (
    select training_rows.impression_id, 'user_events_7d differs from a recount before the day' as problem
    from training_rows
    inner join recounted
        on training_rows.user_key = recounted.user_key
        and training_rows.impression_date = recounted.impression_date
    where training_rows.user_events_7d != recounted.events_before_day
)

select * from recency_from_the_future
union all
select * from count_mismatch
