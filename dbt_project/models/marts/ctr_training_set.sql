-- CTR training rows: every impression whose click label is final by the end of D, with the shared
-- point-in-time features of the impression day (snapshot as of the start of that day).
with impressions as (
    select
        impression_id,
        user_key,
        ad_id,
        campaign_id,
        impression_ts,
        impression_date,
        impression_date as feature_date,
        hour(impression_ts) as hour,
        slot,
        propensity,
        clicked as label_click,
        converted as label_conversion,
        conversion_label_final
    from {{ ref('int_attributed_impressions') }}
    where click_label_final
),

featured as (
    {{ point_in_time_features('impressions') }}
)

select
    impression_id,
    user_key,
    ad_id,
    campaign_id,
    advertiser_id,
    impression_ts,
    impression_date,
    propensity,
    label_click,
    label_conversion,
    conversion_label_final,
    restricted,
    title,
    {{ feature_column_names() | join(',\n    ') }}
from featured
