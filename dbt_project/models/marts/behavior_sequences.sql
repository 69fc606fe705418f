-- The last sequence_length events of each user up to the end of D, oldest first, as aligned lists
-- (nulls kept, so position i of every list is the same event). Serving reads it; training cuts its
-- own point-in-time sequences from user_event_stream.
with ranked as (
    select
        *,
        row_number() over (partition by user_key order by ts desc, event_id desc) as recency_rank
    from {{ ref('user_event_stream') }}
)

select
    user_key,
    {{ as_of_date() }} as as_of_date,
    cast(count(*) as integer) as sequence_length,
    list(event_type order by ts, event_id) as event_types,
    list(item_id order by ts, event_id) as item_ids,
    list(category_id order by ts, event_id) as category_ids,
    list(brand_id order by ts, event_id) as brand_ids,
    list(ad_id order by ts, event_id) as ad_ids,
    list(ts order by ts, event_id) as event_timestamps,
    max(ts) as last_event_ts
from ranked
where recency_rank <= {{ var('sequence_length') }}
group by user_key
