{% macro month_of(expression) -%}
    {#- The first day (DATE) of the calendar month of a DATE (a timestamp is
        bucketed in the reporting time zone by `to_reporting_month`). -#}
    cast(date_trunc('month', {{ expression }}) as date)
{%- endmacro %}


{% macro month_var(name) -%}
    {#- The first day of the month of var `name` (any day of a month), or NULL when
        the var is not set. -#}
    cast(
        date_trunc('month', cast({{ sql_literal(var(name, none)) }} as timestamp))
        as date
    )
{%- endmacro %}


{% macro months_to_build(changed_rows, month_column, all_months='all_months', users='users') -%}
    {#- The CTE `months` of a mart that is incremental by month (delete+insert):
        every month of the range (`all_months`) in a full build; in an
        incremental one, the months of the rows of `changed_rows` newer than the
        last build (their `month_column`), the months of the range the mart has
        no rows for yet, and every month when a user changed (a user's team and
        dates decide the rep rows of every month); never a month outside the
        range (start_month / end_month may cut it). Months that left the range
        are deleted by the model's `valid_keys` config. The arguments are CTE
        names of the calling model, so that its refs are seen when it is
        parsed. -#}
{% if is_incremental() %}
changed_months as (
    select {{ month_column }} as month from {{ changed_rows }}
    where _load_id > {{ last_seen_load_id() }}
        and {{ month_column }} in (select month from {{ all_months }})
),

months as (
    select month from changed_months

    union

    select month from {{ all_months }}
    where month not in (select distinct built.month from {{ this }} as built)

    union

    select month from {{ all_months }}
    where exists (select 1 from {{ users }} where _load_id > {{ last_seen_load_id() }})
)
{%- else %}
months as (
    select month from {{ all_months }}
)
{%- endif %}
{%- endmacro %}


{% macro to_reporting_month(timestamp) -%}
    {#- The first day (DATE) of the month, in the reporting time zone (var
        `timezone`, default UTC; KPI_SPEC section 5), of a UTC TIMESTAMP. Every
        model that buckets a timestamp by month calls this macro. -#}
    cast(date_trunc('month', {{ to_reporting_time(timestamp) }}) as date)
{%- endmacro %}


{% macro to_reporting_date(timestamp) -%}
    {#- The calendar date (DATE), in the reporting time zone, of a UTC TIMESTAMP. -#}
    cast({{ to_reporting_time(timestamp) }} as date)
{%- endmacro %}


{% macro to_reporting_time(timestamp) -%}
    {#- A UTC TIMESTAMP as the wall-clock TIMESTAMP of the reporting time zone:
        read as an instant in UTC, then shown in the zone, so that neither the
        machine's TZ nor DuckDB's TimeZone setting matters. In UTC it is the
        timestamp itself. Only for bucketing: durations stay differences of the
        UTC timestamps (instants), so a daylight-saving change never adds or
        removes an hour. -#}
    {%- set zone = var('timezone', 'UTC') -%}
    {%- if zone == 'UTC' -%}
        {{ timestamp }}
    {%- else -%}
        timezone({{ sql_literal(zone) }}, timezone('UTC', {{ timestamp }}))
    {%- endif -%}
{%- endmacro %}
