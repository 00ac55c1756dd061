{#- KPI_SPEC section 2: a `prev_*` column is the value on the row of the same
    level, team and rep for the previous month of the range, NULL when there is no
    such row; never a value from an older month. Checked against a self-join. -#}

{%- set checks = [
    ('kpi_avg_deal_size', 'avg_deal_size', 'prev_avg_deal_size'),
    ('kpi_monthly_sales', 'won_amount', 'prev_won_amount'),
] %}

with

{% for mart, column, previous_column in checks %}
{{ mart }}_mismatches as (
    select
        '{{ mart }}' as mart,
        current_rows.month,
        current_rows.level,
        current_rows.team_id,
        current_rows.rep_id,
        cast(current_rows.{{ previous_column }} as double) as previous_value,
        cast(previous_rows.{{ column }} as double) as expected_previous_value
    from {{ ref(mart) }} as current_rows
    left join {{ ref(mart) }} as previous_rows
        on previous_rows.month = cast(current_rows.month - interval 1 month as date)
        and previous_rows.level = current_rows.level
        and previous_rows.team_id is not distinct from current_rows.team_id
        and previous_rows.rep_id is not distinct from current_rows.rep_id
    where current_rows.{{ previous_column }} is distinct from previous_rows.{{ column }}
),

{% endfor %}
mismatches as (
    {%- for mart, column, previous_column in checks %}
    select * from {{ mart }}_mismatches
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select * from mismatches
