{#-
  Incremental event staging (stg_raw__behavior_events, stg_raw__ad_events).

  A staged row depends only on raw partitions up to its own partition (the earliest copy of an
  event_id wins), so the staged table is a prefix of partitions that can be kept as long as raw has
  not changed under it. Each run, in a pre-hook:
    1. compare every partition's (row count, latest load time) in raw, up to D, with the staged
       table; the first partition that differs -- re-ingested, newly landed, or landed after D when
       D is a backfill -- and every later one is deleted from the staged table;
    2. the model then stages only the raw partitions after the last one kept, ranking repeated ids
       among them and dropping ids already staged in an earlier partition.
  The result has the rows a full rebuild would have, so re-running or backfilling any day is
  idempotent. A partition that lost a re-sent event to the dedupe never matches raw's count and is
  simply restaged every run. A changed pseudonym key invalidates every user_key: one staged row is
  re-hashed from its raw row, and on a mismatch everything is restaged. A change to the model's
  logic needs `dbt build --full-refresh`, as for any incremental model.
-#}

{#- The first partition_date whose staged rows no longer match raw (D + 1 when all do). -#}
{% macro first_stale_event_partition(raw_relation) -%}
(
    with raw_partitions as (
        select _partition_date as partition_date, count(*) as n_rows, max(_loaded_at) as loaded_at
        from {{ raw_relation }}
        where {{ landed_by_as_of_date() }}
        group by all
    ),

    staged_partitions as (
        select partition_date, count(*) as n_rows, max(loaded_at) as loaded_at
        from {{ this }}
        group by all
    ),

    differing as (
        (select * from raw_partitions except select * from staged_partitions)
        union all
        (select * from staged_partitions except select * from raw_partitions)
    ),

    key_unchanged as (
        select coalesce(bool_and(staged.user_key is not distinct from {{ pseudonymize('landed.user_id') }}), true) as ok
        from (select event_id, user_key, partition_date from {{ this }} limit 1) as staged
        inner join {{ raw_relation }} as landed
            on landed.event_id = staged.event_id and landed._partition_date = staged.partition_date
    )

    select case
        when not (select ok from key_unchanged) then date '0001-01-01'
        else coalesce((select min(partition_date) from differing), cast({{ as_of_date() }} + interval 1 day as date))
    end
)
{%- endmacro %}

{#- Pre-hook: drop the stale tail of the staged table (nothing on a first or full-refresh build). -#}
{% macro delete_stale_event_partitions(raw_relation) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where partition_date >= {{ first_stale_event_partition(raw_relation) }}
    {%- else -%}
        select 1 as nothing_staged_yet
    {%- endif -%}
{%- endmacro %}

{#- The raw rows of `raw_relation` still to stage: partitions up to D after the last one staged. -#}
{% macro event_partitions_to_stage(raw_relation) -%}
    select * from {{ raw_relation }}
    where {{ landed_by_as_of_date() }}
    {%- if is_incremental() %}
        and _partition_date > (select coalesce(max(partition_date), date '0001-01-01') from {{ this }})
    {%- endif %}
{%- endmacro %}

{#- Drops rows whose event_id is already staged in an earlier, kept partition (the earliest wins). -#}
{% macro not_staged_before(relation) -%}
    select * from {{ relation }}
    {%- if is_incremental() %}
    anti join {{ this }} as staged on {{ relation }}.event_id is not distinct from staged.event_id
    {%- endif %}
{%- endmacro %}
