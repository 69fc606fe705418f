-- Per ad and calendar day of the event: impressions, clicks, conversions and spend. Counting each
-- event on its own day keeps ad_features point-in-time (a click is visible from the day after it).
select
    ad_id,
    event_date as activity_date,
    count(*) filter (where event_type = 'impression') as impressions,
    count(*) filter (where event_type = 'click') as clicks,
    count(*) filter (where event_type = 'conversion') as conversions,
    sum(cost) as spend
from {{ ref('stg_raw__ad_events') }}
group by all
