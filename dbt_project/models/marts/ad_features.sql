-- Ad attributes and delivery history per snapshot day S, as of the START of S: impression and
-- click counts use days strictly before S; ad and campaign attributes use the version in effect
-- on S (an ad lands the day it can first be served).
{%- set window_days = var('feature_window_days') %}
with snapshot_dates as (
    select snapshot_date from {{ ref('int_snapshot_dates') }}
),

ad_versions as (
    select * from {{ ref('stg_raw__ads') }}
),

campaign_versions as (
    select * from {{ ref('stg_raw__campaigns') }}
),

ads_first_landed as (
    select ad_id, min(version_date) as first_landed_date
    from ad_versions
    group by ad_id
),

ad_days as (
    select
        ads_first_landed.ad_id,
        ads_first_landed.first_landed_date,
        snapshot_dates.snapshot_date,
        coalesce(daily.impressions, 0) as impressions,
        coalesce(daily.clicks, 0) as clicks,
        coalesce(daily.conversions, 0) as conversions
    from ads_first_landed
    cross join snapshot_dates
    left join {{ ref('int_ad_daily_stats') }} as daily
        on ads_first_landed.ad_id = daily.ad_id
        and snapshot_dates.snapshot_date = daily.activity_date
),

windowed as (
    select
        ad_id,
        first_landed_date,
        snapshot_date,
        coalesce(sum(impressions) over prior_days, 0) as ad_impressions_7d,
        coalesce(sum(clicks) over prior_days, 0) as ad_clicks_7d,
        coalesce(sum(conversions) over prior_days, 0) as ad_conversions_7d
    from ad_days
    window prior_days as (partition by ad_id order by snapshot_date
        rows between {{ window_days }} preceding and 1 preceding)
),

with_ad_version as (
    select
        windowed.*,
        ad_versions.campaign_id,
        ad_versions.category_id,
        ad_versions.brand_id,
        ad_versions.price,
        ad_versions.title
    from windowed
    asof inner join ad_versions
        on windowed.ad_id = ad_versions.ad_id
        and windowed.snapshot_date >= ad_versions.version_date
)

select
    with_ad_version.ad_id,
    with_ad_version.snapshot_date,
    with_ad_version.campaign_id,
    campaign_versions.advertiser_id,
    with_ad_version.category_id,
    with_ad_version.brand_id,
    with_ad_version.price,
    with_ad_version.title,
    campaign_versions.bid,
    campaign_versions.bid_type,
    campaign_versions.objective,
    campaign_versions.daily_budget,
    campaign_versions.start_date,
    campaign_versions.end_date,
    coalesce(campaign_versions.restricted, false) as restricted,
    coalesce(with_ad_version.snapshot_date between campaign_versions.start_date and campaign_versions.end_date, false)
        as is_campaign_active,
    cast(with_ad_version.ad_impressions_7d as bigint) as ad_impressions_7d,
    cast(with_ad_version.ad_clicks_7d as bigint) as ad_clicks_7d,
    cast(with_ad_version.ad_conversions_7d as bigint) as ad_conversions_7d,
    {{ smoothed_ctr('with_ad_version.ad_clicks_7d', 'with_ad_version.ad_impressions_7d') }} as ad_ctr_7d,
    {{ smoothed_cvr('with_ad_version.ad_conversions_7d', 'with_ad_version.ad_clicks_7d') }} as ad_cvr_7d,
    cast(date_diff('day', with_ad_version.first_landed_date, with_ad_version.snapshot_date) as integer) as ad_age_days
from with_ad_version
asof left join campaign_versions
    on with_ad_version.campaign_id = campaign_versions.campaign_id
    and with_ad_version.snapshot_date >= campaign_versions.version_date
