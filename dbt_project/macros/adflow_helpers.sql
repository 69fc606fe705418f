{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- The exclusive upper bound of the partition day D: labels whose window ends before it are final. -#}
{% macro as_of_end_ts() -%}
    (cast('{{ var("as_of_date") }}' as timestamp) + interval 1 day)
{%- endmacro %}

{#- Staging reads only landing days up to the run's partition, so a backfill of day D never sees
    what landed later. -#}
{% macro landed_by_as_of_date() -%}
    _partition_date <= {{ as_of_date() }}
{%- endmacro %}

{#- HMAC-SHA256 of the decimal user id under AD_PSEUDONYM_KEY: a DuckDB function registered by
    ml/privacy/dbt_plugin.py (the same code as ml.privacy.pseudonyms.pseudonymize), so the key is
    never a literal in the SQL dbt compiles. -#}
{% macro pseudonymize(user_id_column) -%}
    user_pseudonym(cast({{ user_id_column }} as bigint))
{%- endmacro %}

{#- Beta-prior smoothing so that a handful of impressions cannot produce a CTR of 0 or 1. -#}
{% macro smoothed_ctr(clicks, impressions) -%}
    (({{ clicks }}) + {{ var("ctr_prior") }} * {{ var("ctr_prior_weight") }})
        / (({{ impressions }}) + {{ var("ctr_prior_weight") }})
{%- endmacro %}

{#- The same smoothing for conversions per click. -#}
{% macro smoothed_cvr(conversions, clicks) -%}
    (({{ conversions }}) + {{ var("cvr_prior") }} * {{ var("cvr_prior_weight") }})
        / (({{ clicks }}) + {{ var("cvr_prior_weight") }})
{%- endmacro %}

{#- A `user_keys` CTE: (user_id, user_key) for each distinct user_id of `relation`. Hashing the few
    distinct ids and joining them back costs a fraction of one HMAC per event row; a null user_id
    finds no match and gets a null user_key, as the function of a null would give. -#}
{% macro user_keys_of(relation) -%}
user_keys as (
    select user_id, {{ pseudonymize('user_id') }} as user_key
    from (select distinct user_id from {{ relation }})
)
{%- endmacro %}

{#- The raw rows of `relation` keeping, per event_id, the copy of the earliest _partition_date (the
    latest load within it): the same rows as
        qualify row_number() over (partition by event_id order by _partition_date, _loaded_at desc) = 1
    but only event ids that occur more than once are ranked. Ingest already rejects repeated ids,
    so that set is usually empty, and one hash aggregate over the ids replaces a partitioned sort
    of every event row. `is not distinct from` keeps a single row for null ids, as the window does. -#}
{% macro first_landed_copy_per_event(relation) -%}
    with repeated_ids as (
        select event_id from {{ relation }} group by event_id having count(*) > 1
    )

    select {{ relation }}.*
    from {{ relation }}
    anti join repeated_ids on {{ relation }}.event_id is not distinct from repeated_ids.event_id

    union all

    select {{ relation }}.*
    from {{ relation }}
    semi join repeated_ids on {{ relation }}.event_id is not distinct from repeated_ids.event_id
    qualify row_number() over (partition by {{ relation }}.event_id order by _partition_date, _loaded_at desc) = 1
{%- endmacro %}
