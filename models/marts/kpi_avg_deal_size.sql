{#- KPI 3, average deal size: won amount / won deals, by close month and deal
    owner, with the change from the previous month. -#}

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
        won_amount
    from {{ ref('int_closed_deals_aggregated') }}
    where won_deals > 0
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['won_deals', ['month', 'team_id', 'rep_id', 'won_deals', 'won_amount']]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        {{ sum_or_zero('rep_rows.won_deals') }} as won_deals,
        {{ sum_or_zero('rep_rows.won_amount', 'decimal(38, 4)') }} as won_amount
    {% endcall %}
),

deal_sizes as (
    select
        *,
        {{ safe_divide('won_amount', 'won_deals') }} as avg_deal_size
    from rolled_up
),

with_previous_month as (
    select
        *,
        {{ previous_month_value('avg_deal_size') }} as prev_avg_deal_size
    from deal_sizes
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        won_deals,
        won_amount,
        {{ currency_code_column() }}
        avg_deal_size,
        prev_avg_deal_size,
        {{ percent_change('avg_deal_size', 'prev_avg_deal_size') }} as mom_change_pct
    from with_previous_month
)

select * from final
