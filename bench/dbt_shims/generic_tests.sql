{#- Generic tests our runner has built in and dbt does not (the names of
    dbt-utils' tests): the SQL of runner/macros/generic_tests.sql, without its
    `new_rows` argument (the rows changed since the test last passed, which only
    our runner passes). -#}

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


{% test unique_combination_of_columns(model, combination_of_columns) %}
with
    all_rows as (
        select * from {{ model }}
    )

select
    {% for column in combination_of_columns -%}
    all_rows.{{ column }},
    {% endfor -%}
    count(*) as n_records
from all_rows
group by {% for column in combination_of_columns -%}
    all_rows.{{ column }}{{ ", " if not loop.last }}
{%- endfor %}
having count(*) > 1
{% endtest %}
