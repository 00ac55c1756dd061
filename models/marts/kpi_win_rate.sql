{#- KPI 1, win rate: won / closed deals, by close month and deal owner. -#}

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

closed_deals as (
    select
        close_month as month,
        owner_team_id as team_id,
        owner_id as rep_id,
        won_deals,
        lost_deals,
        closed_deals
    from {{ ref('int_closed_deals_aggregated') }}
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['closed_deals', ['month', 'team_id', 'rep_id', 'won_deals', 'lost_deals', 'closed_deals']]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        {{ sum_or_zero('rep_rows.won_deals') }} as won_deals,
        {{ sum_or_zero('rep_rows.lost_deals') }} as lost_deals,
        {{ sum_or_zero('rep_rows.closed_deals') }} as closed_deals
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        won_deals,
        lost_deals,
        closed_deals,
        {{ safe_divide('won_deals', 'closed_deals') }} as win_rate
    from rolled_up
)

select * from final
