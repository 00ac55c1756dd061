{#- KPI 4, days to close: the days from first touch to close_date of won deals,
    by close month and deal owner. -#}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

active_reps as (
    select
        month,
        team_id,
        rep_id
    from {{ ref('int_rep_months_spined') }}
),

won_deals as (
    select
        close_month as month,
        owner_team_id as team_id,
        owner_id as rep_id,
        won_deals,
        total_days_to_close
    from {{ ref('int_closed_deals_aggregated') }}
    where won_deals > 0
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['won_deals', ['month', 'team_id', 'rep_id', 'won_deals', 'total_days_to_close']]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        {{ sum_or_zero('rep_rows.won_deals') }} as won_deals,
        {{ sum_or_zero('rep_rows.total_days_to_close') }} as total_days_to_close
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        won_deals,
        total_days_to_close,
        {{ safe_divide('total_days_to_close', 'won_deals') }} as avg_days_to_close
    from rolled_up
)

select * from final
