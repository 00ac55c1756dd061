{% macro safe_divide(numerator, denominator) -%}
    {#- numerator / denominator as DOUBLE; NULL when the denominator is 0 or NULL. -#}
    cast({{ numerator }} as double) / nullif({{ denominator }}, 0)
{%- endmacro %}


{% macro percent_of(numerator, denominator) -%}
    {#- numerator / denominator x 100 as DOUBLE; NULL when the denominator is 0 or
        NULL. -#}
    {{ safe_divide(numerator, denominator) }} * 100
{%- endmacro %}


{% macro percent_change(current, previous) -%}
    {#- (current - previous) / previous x 100; NULL when previous is NULL or 0. -#}
    {{ percent_of('(' ~ current ~ ') - (' ~ previous ~ ')', previous) }}
{%- endmacro %}


{% macro sum_or_zero(expression, data_type='bigint', condition=none) -%}
    {#- A sum (of the rows meeting `condition`, if given) that is 0 over nothing,
        in a fixed type (DuckDB sums BIGINT into HUGEINT). -#}
    {%- set filter_clause = '' -%}
    {%- if condition is not none -%}
        {%- set filter_clause = ' filter (where ' ~ condition ~ ')' -%}
    {%- endif -%}
    cast(coalesce(sum({{ expression }}){{ filter_clause }}, 0) as {{ data_type }})
{%- endmacro %}


{% macro count_where(condition) -%}
    {#- How many rows of the group meet `condition`, as BIGINT. -#}
    count(*) filter (where {{ condition }})
{%- endmacro %}


{% macro microseconds_between(start, end) -%}
    {#- The exact number of microseconds from the timestamp `start` to `end`, as
        BIGINT (negative when `end` is earlier; NULL when either is NULL). -#}
    date_diff('microsecond', {{ start }}, {{ end }})
{%- endmacro %}


{% macro truncate_double(value, decimals) -%}
    {#- The DOUBLE `value` truncated toward zero to `decimals` decimals, as DOUBLE:
        trunc(value x 10^decimals) / 10^decimals, in floating point (DuckDB's
        trunc(x, n); Spark's trunc is for dates only). -#}
    {%- if target.type == 'spark' -%}
        cast(cast(({{ value }}) * {{ 10 ** decimals }} as bigint) as double) / {{ 10 ** decimals }}
    {%- else -%}
        trunc({{ value }}, {{ decimals }})
    {%- endif -%}
{%- endmacro %}
