{#- KPI 7, monthly sales: won deals and amount by close month and deal owner,
    against the owners' quotas, with the growth from the previous month. -#}

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

quotas as (
    select
        quota_month,
        user_id,
        quota_amount
    from {{ ref('int_quotas_converted') }}
    {# a quota of 0 or less is no quota #}
    where quota_amount > 0
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['won_deals', ['month', 'team_id', 'rep_id', 'won_deals', 'won_amount']]
    ]) }}
),

rep_months as (
    select
        month,
        team_id,
        rep_id,
        {{ sum_or_zero('won_deals') }} as won_deals,
        {{ sum_or_zero('won_amount', 'decimal(38, 4)') }} as won_amount
    from rep_rows
    group by
        month,
        team_id,
        rep_id
),

rep_sales as (
    {# a quota does not make a rep row here; it is joined to the rows that exist #}
    select
        rep_months.month,
        rep_months.team_id,
        rep_months.rep_id,
        rep_months.won_deals,
        rep_months.won_amount,
        quotas.quota_amount
    from rep_months
    left join quotas
        on rep_months.month = quotas.quota_month
        and rep_months.rep_id = quotas.user_id
),

rolled_up as (
    {% call rollup_by_level('rep_sales') %}
        {{ sum_or_zero('rep_sales.won_deals') }} as won_deals,
        {{ sum_or_zero('rep_sales.won_amount', 'decimal(38, 4)') }}
            as won_amount,
        {{ sum_or_zero('rep_sales.quota_amount', 'decimal(38, 4)') }}
            as quota_amount
    {% endcall %}
),

with_previous_month as (
    select
        *,
        {{ safe_divide('won_amount', 'quota_amount') }} as attainment,
        {{ previous_month_value('won_amount') }} as prev_won_amount
    from rolled_up
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        won_deals,
        won_amount,
        quota_amount,
        {{ currency_code_column() }}
        attainment,
        prev_won_amount,
        {{ percent_change('won_amount', 'prev_won_amount') }} as mom_growth_pct
    from with_previous_month
)

select * from final
