{#- The rollup of every KPI mart: one pass over the rep rows with GROUPING SETS
    (rep -> team -> company) instead of three copies of the query. A mart writes

        rolled_up as (
            {% call rollup_by_level('rep_rows') %}
                {{ sum_or_zero('rep_rows.won_deals') }} as won_deals,
                ...
            {% endcall %}
        ),

    where `rep_rows` has month, team_id, rep_id and the columns the aggregates
    read, and the call body lists the aggregates (sums and counts, never
    averages: rates are computed from the rolled-up sums afterwards). The query
    is driven by the month spine (a CTE `months` by default) so that there is a
    company row for every month of the range, even one without any rep row; the
    HAVING clause drops the empty team and rep groups such a month would
    otherwise produce. -#}

{% macro rollup_by_level(rows, spine='months', keys=['month'], join_keys=['month']) -%}
    {%- set team = rows ~ '.team_id' -%}
    {%- set rep = rows ~ '.rep_id' -%}
    {%- set spine_keys = [] -%}
    {%- for key in keys -%}
        {%- do spine_keys.append(spine ~ '.' ~ key) -%}
    {%- endfor -%}
    {%- set group_keys = spine_keys | join(', ') -%}
    select
        {{ spine_keys[0] }},
        {{ level_of(team, rep) }} as level,
        {{ team }},
        {{ rep }},
        {%- for key in spine_keys[1:] %}
        {{ key }},
        {%- endfor %}
        {{- caller() }}
    from {{ spine }}
    left join {{ rows }}
        on
        {%- for key in join_keys %}
        {{ 'and ' if not loop.first }}{{ spine }}.{{ key }} = {{ rows }}.{{ key }}
        {%- endfor %}
    group by grouping sets (
        ({{ group_keys }}),
        ({{ group_keys }}, {{ team }}),
        ({{ group_keys }}, {{ team }}, {{ rep }})
    )
    having grouping({{ team }}) = 1 or count({{ rep }}) > 0
{%- endmacro %}


{% macro level_of(team_column, rep_column) -%}
    {#- `company`, `team` or `rep`, from which GROUPING SET made the row. -#}
    case when grouping({{ team_column }}) = 1 then 'company'
        when grouping({{ rep_column }}) = 1 then 'team' else 'rep' end
{%- endmacro %}


{% macro previous_month_value(column, partition_by=['level', 'team_id', 'rep_id']) -%}
    {#- The value of `column` on the row of the same level/team/rep for the previous
        calendar month; NULL when there is no such row. Needs a `month` column. -#}
    {%- set partition = partition_by | join(', ') -%}
    {%- set window = 'over (partition by ' ~ partition ~ ' order by month)' -%}
    case
        when date_diff('month', lag(month) {{ window }}, month) = 1
            then lag({{ column }}) {{ window }}
    end
{%- endmacro %}


{% macro union_all_by_name(relations) -%}
    {#- The rows of several CTEs stacked on their column names: `relations` is a
        list of `[cte, [column, ...]]`; the result has every column named, in
        the order first named, and NULL where a CTE lacks the column. An
        explicit `union all`, which every SQL engine reads the same way. -#}
    {%- set columns = [] -%}
    {%- for relation in relations -%}
        {%- for column in relation[1] if column not in columns -%}
            {%- do columns.append(column) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for relation in relations %}
    {{ 'union all' if not loop.first }}
    select
        {%- for column in columns %}
        {{ column if column in relation[1] else 'null as ' ~ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation[0] }}
    {%- endfor %}
{%- endmacro %}
