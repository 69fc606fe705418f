-- The last sequence_length events of each user up to the end of D, oldest first, as aligned lists
-- (nulls kept, so position i of every list is the same event). Serving reads it; training cuts its
-- own point-in-time sequences from user_event_stream.
-- One ordered aggregate per user, newest first, cut to the last sequence_length and reversed:
-- a single sort keeps the lists aligned and needs no separate ranking window.
with collected as (
    select
        user_key,
        list_reverse(list_slice(
            list(
                {'event_type': event_type, 'item_id': item_id, 'category_id': category_id,
                 'brand_id': brand_id, 'ad_id': ad_id, 'ts': ts}
                order by ts desc, event_id desc
            ),
            1, {{ var('sequence_length') }}
        )) as events
    from {{ ref('user_event_stream') }}
    group by user_key
)

select
    user_key,
    {{ as_of_date() }} as as_of_date,
    cast(len(events) as integer) as sequence_length,
    list_transform(events, lambda e: e.event_type) as event_types,
    list_transform(events, lambda e: e.item_id) as item_ids,
    list_transform(events, lambda e: e.category_id) as category_ids,
    list_transform(events, lambda e: e.brand_id) as brand_ids,
    list_transform(events, lambda e: e.ad_id) as ad_ids,
    list_transform(events, lambda e: e.ts) as event_timestamps,
    events[len(events)].ts as last_event_ts
from collected
