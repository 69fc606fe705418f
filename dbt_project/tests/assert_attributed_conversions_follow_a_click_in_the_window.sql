-- Reads several models: the meta names the one whose asset check it is (dagster-dbt needs it).
{{ config(meta={'dagster': {'ref': {'name': 'int_attributed_impressions'}}}) }}
-- A credited conversion needs a valid click of the impression at or before it and no more than
-- attribution_window_days after that impression's last click; training rows need final click labels.
select impression_id, 'conversion without a click in the window' as problem
from {{ ref('int_attributed_impressions') }}
where converted
    and (
        not clicked
        or conversion_ts < click_ts
        or conversion_ts > last_click_ts + interval {{ var('attribution_window_days') }} day
    )

union all

select impression_id, 'training row whose click window is still open' as problem
from {{ ref('ctr_training_set') }}
where impression_ts + interval {{ var('click_window_hours') }} hour > {{ as_of_end_ts() }}
