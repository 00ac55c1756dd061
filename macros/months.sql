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
