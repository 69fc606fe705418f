{{ config(tags=['scoring']) }}
-- Features for the (user, ad) candidates Python retrieved for schedule_date, from the same macro
-- as the training sets. The hour and slot are not known before allocation: score at the user's
-- most active hour (the busiest hour overall for users without history) and slot 1.
with candidates as (
    select distinct
        user_key,
        cast(ad_id as bigint) as ad_id,
        cast(schedule_date as date) as schedule_date
    from {{ source('ml', 'ad_candidates') }}
),

busiest_hour_overall as (
    select hour from {{ ref('hourly_traffic') }} order by events desc, hour limit 1
),

scored_context as (
    select
        candidates.user_key,
        candidates.ad_id,
        candidates.schedule_date,
        candidates.schedule_date as feature_date,
        coalesce(user_top_hour.hour, (select hour from busiest_hour_overall), 0) as hour,
        1 as slot
    from candidates
    left join {{ ref('user_hourly_activity') }} as user_top_hour
        on candidates.user_key = user_top_hour.user_key
        and user_top_hour.activity_rank = 1
),

featured as (
    {{ point_in_time_features('scored_context') }}
)

select
    user_key,
    ad_id,
    ad_campaign_id as campaign_id,
    advertiser_id,
    schedule_date,
    restricted,
    title,
    {{ feature_column_names() | join(',\n    ') }}
from featured
order by user_key, ad_id
