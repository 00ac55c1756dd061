{% macro levels_add_up(model, columns, keys=['month'], approximate=[]) %}
    {#- The rows of a KPI mart where a rollup does not add up: every team row must
        equal the sum of its rep rows, and every company row the sum of its team
        rows, in each of `columns` (additive columns; `approximate` ones are
        DOUBLE sums and may differ by rounding), and rows below must have the row
        above them. `keys` are the grain's columns beyond level, team_id and
        rep_id. A row with no rows below it must be all zeros. Returns one row per
        mismatch (empty when it all adds up). -#}
    {%- set key_list = keys | join(', ') -%}

with

mart_rows as (
    select * from {{ model }}
),

rep_sums as (
    select
        {{ key_list }},
        team_id,
        {%- for column in columns %}
        sum({{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from mart_rows
    where level = 'rep'
    group by {{ key_list }}, team_id
),

team_sums as (
    select
        {{ key_list }},
        {%- for column in columns %}
        sum({{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from mart_rows
    where level = 'team'
    group by {{ key_list }}
),

team_rows as (
    select * from mart_rows
    where level = 'team'
),

company_rows as (
    select * from mart_rows
    where level = 'company'
),

comparisons as (
    select
        'team' as level,
        {%- for key in keys %}
        coalesce(team_rows.{{ key }}, rep_sums.{{ key }}) as {{ key }},
        {%- endfor %}
        coalesce(team_rows.team_id, rep_sums.team_id) as team_id,
        team_rows.level is null as is_row_missing,
        {%- for column in columns %}
        team_rows.{{ column }} as {{ column }},
        rep_sums.{{ column }} as {{ column }}_of_rows_below{{ ',' if not loop.last }}
        {%- endfor %}
    from team_rows
    full outer join rep_sums
        on team_rows.team_id is not distinct from rep_sums.team_id
        {%- for key in keys %}
        and team_rows.{{ key }} = rep_sums.{{ key }}
        {%- endfor %}

    union all

    select
        'company' as level,
        {%- for key in keys %}
        coalesce(company_rows.{{ key }}, team_sums.{{ key }}) as {{ key }},
        {%- endfor %}
        null as team_id,
        company_rows.level is null as is_row_missing,
        {%- for column in columns %}
        company_rows.{{ column }} as {{ column }},
        team_sums.{{ column }} as {{ column }}_of_rows_below{{ ',' if not loop.last }}
        {%- endfor %}
    from company_rows
    full outer join team_sums
        on true
        {%- for key in keys %}
        and company_rows.{{ key }} = team_sums.{{ key }}
        {%- endfor %}
),

mismatches as (
    select * from comparisons
    where
        is_row_missing
        {%- for column in columns %}
        {%- if column in approximate %}
        or abs(coalesce({{ column }}, 0) - coalesce({{ column }}_of_rows_below, 0))
            > 1e-9 * greatest(1, abs(coalesce({{ column }}, 0)))
        {%- else %}
        or coalesce({{ column }}, 0) <> coalesce({{ column }}_of_rows_below, 0)
        {%- endif %}
        {%- endfor %}
)

select * from mismatches
{% endmacro %}
