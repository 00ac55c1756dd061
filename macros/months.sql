{% macro month_of(expression) -%}
    {#- The first day (DATE) of the calendar month of a DATE or UTC TIMESTAMP. -#}
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


{% macro months_to_rebuild(changed_months, months, users) -%}
    {#- The months an incremental mart rebuilds (delete+insert by month): those
        where its inputs changed (`changed_months`, a query with a `month`
        column), the months of the range it has no rows for yet, and every
        month when a user changed (a user's team and dates decide the rep rows
        of every month). The arguments are CTE names of the calling model (so
        that its refs are seen when the project is parsed): `changed_months`
        with a `month` column, the range's `months`, and `users` with a
        `_load_id`. -#}
    select month from {{ changed_months }}

    union

    select month from {{ months }}
    where month not in (select distinct built.month from {{ this }} as built)

    union

    select month from {{ months }}
    where exists (select 1 from {{ users }} where _load_id > {{ last_seen_load_id() }})
{%- endmacro %}
