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

{#- Must equal ml.settings.pseudonymize: md5 of salt followed by the decimal user id. -#}
{% macro pseudonymize(user_id_column) -%}
    md5('{{ env_var("AD_PSEUDONYM_SALT", "dev-salt-change-me") }}' || cast({{ user_id_column }} as varchar))
{%- endmacro %}

{#- Beta-prior smoothing so that a handful of impressions cannot produce a CTR of 0 or 1. -#}
{% macro smoothed_ctr(clicks, impressions) -%}
    (({{ clicks }}) + {{ var("ctr_prior") }} * {{ var("ctr_prior_weight") }})
        / (({{ impressions }}) + {{ var("ctr_prior_weight") }})
{%- endmacro %}
