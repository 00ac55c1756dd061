{#- Names our runner puts in every template's context that dbt does not have. -#}

{% macro sql_literal(value) -%}
    {#- A value as a SQL literal: strings quoted (`it's` -> `'it''s'`), numbers and
        booleans as such, none as `null` (runner/templating.py `sql_literal`). -#}
    {%- if value is none -%}
        null
    {%- elif value is sameas true or value is sameas false -%}
        {{ 'true' if value else 'false' }}
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}


{% macro last_seen_load_id() -%}
    {#- Our runner: the newest raw load this model had seen when it was last built,
        from its own build state. dbt keeps no such state; when every row of the
        model carries the `_load_id` of the newest load it was built from, that is
        the largest `_load_id` in the model. Only incremental runs render it. -#}
    (select coalesce(max(_load_id), 0) from {{ this }})
{%- endmacro %}
