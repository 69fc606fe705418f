-- Evidence for the creative selector (ml/creatives): impressions and clicks per ad, user segment and
-- creative, over every impression up to D whose click label is final, for ads that have creatives.
-- Impressions of such an ad's own title (creative_id null) stay: they count towards the ad's pooled
-- CTR, the prior of its creatives. Segments: user_segments ('unknown' for a user without a row).
with creative_ads as (
    select distinct ad_id from {{ ref('stg_raw__creatives') }}
)

select
    impressions.ad_id,
    coalesce(user_segments.segment, 'unknown') as segment,
    impressions.creative_id,
    count(*) as impressions,
    cast(sum(case when impressions.clicked then 1 else 0 end) as bigint) as clicks
from {{ ref('int_attributed_impressions') }} as impressions
inner join creative_ads on impressions.ad_id = creative_ads.ad_id
left join {{ ref('user_segments') }} as user_segments on impressions.user_key = user_segments.user_key
where impressions.click_label_final
group by all
