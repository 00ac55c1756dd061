{#- Built-in generic data tests. A test passes when its query returns no rows.
    A project macro `{% test name(...) %}` of the same name replaces one of these. -#}

{% test not_null(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{% endtest %}


{#- `new_rows`, when the runner passes it, holds only the rows that changed since
    the test last passed: their keys are compared with every row. Otherwise
    equal values hash alike, so only the rows whose hash repeats are grouped
    by value: grouping 64-bit hashes costs less than grouping long text keys
    (18-character CRM ids), and the failing rows are the same. -#}
{% test unique(model, column_name, new_rows=none) %}
{%- if new_rows is none %}
with
    repeated_hashes as (
        select hash({{ column_name }}) as key_hash
        from {{ model }}
        where {{ column_name }} is not null
        group by 1
        having count(*) > 1
    )

{% endif -%}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if new_rows is not none %}
    and {{ column_name }} in (select {{ column_name }} from {{ new_rows }})
{%- else %}
    and hash({{ column_name }}) in (select key_hash from repeated_hashes)
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}


{% test accepted_values(model, column_name, values, quote=true) %}
select
    {{ column_name }} as value_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
    and {{ column_name }} not in (
        {%- for value in values %}
        {{ sql_literal(value) if quote else value }}{{ "," if not loop.last }}
        {%- endfor %}
    )
group by {{ column_name }}
{% endtest %}


{% test relationships(model, column_name, to, field) %}
with
    child as (
        select {{ column_name }} as from_field
        from {{ model }}
        where {{ column_name }} is not null
    ),

    parent as (
        select {{ field }} as to_field
        from {{ to }}
    )

select child.from_field
from child
anti join parent on child.from_field = parent.to_field
{% endtest %}


{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
select {{ column_name }}
from {{ model }}
where
    {%- if min_value is none and max_value is none %}
    false
    {%- else %}
    1 = 2
    {%- endif %}
    {%- if min_value is not none %}
    or {{ column_name }} {{ "<" if inclusive else "<=" }} {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
    or {{ column_name }} {{ ">" if inclusive else ">=" }} {{ max_value }}
    {%- endif %}
{% endtest %}


{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ column_name ~ " " if column_name }}{{ expression }}), false)
{% endtest %}


{% test unique_combination_of_columns(model, combination_of_columns, new_rows=none) %}
{%- set columns = combination_of_columns | join(", ") %}
with
    {%- if new_rows is none %}
    {#- as `unique`: only the rows whose hash repeats are grouped #}
    repeated_hashes as (
        select hash({{ columns }}) as key_hash
        from {{ model }}
        group by 1
        having count(*) > 1
    ),

    all_rows as (
        select * from {{ model }}
        where hash({{ columns }}) in (select key_hash from repeated_hashes)
    )
    {%- else %}
    all_rows as (
        select * from {{ model }}
    ),

    new_keys as (
        select distinct {{ columns }}
        from {{ new_rows }}
    )
    {%- endif %}

select
    {% for column in combination_of_columns -%}
    all_rows.{{ column }},
    {% endfor -%}
    count(*) as n_records
from all_rows
{%- if new_rows is not none %}
semi join new_keys on
    {%- for column in combination_of_columns %}
    {{ "and " if not loop.first }}all_rows.{{ column }} is not distinct from new_keys.{{ column }}
    {%- endfor %}
{%- endif %}
group by {% for column in combination_of_columns -%}
    all_rows.{{ column }}{{ ", " if not loop.last }}
{%- endfor %}
having count(*) > 1
{% endtest %}
