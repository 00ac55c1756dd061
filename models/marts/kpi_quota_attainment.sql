{#- KPI 5, quota attainment: won amount against quota, by quota month and rep.
    Rep rows: active reps, users with a quota (quota_amount > 0) and owners of
    deals won that month. -#}

{%- set threshold -%}
    cast({{ sql_literal(var('quota_attainment_threshold', 1.0)) }} as decimal(18, 6))
{%- endset %}

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

users as (
    select
        user_id,
        team_id
    from {{ ref('stg_crm__users') }}
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

won_deals as (
    select
        close_month as month,
        owner_team_id as team_id,
        owner_id as rep_id,
        won_amount
    from {{ ref('int_closed_deals_aggregated') }}
    where won_deals > 0
),

quota_holders as (
    select
        quotas.quota_month as month,
        users.team_id,
        quotas.user_id as rep_id,
        quotas.quota_amount
    from quotas
    left join users
        on quotas.user_id = users.user_id
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['quota_holders', ['month', 'team_id', 'rep_id', 'quota_amount']],
        ['won_deals', ['month', 'team_id', 'rep_id', 'won_amount']]
    ]) }}
),

rep_months as (
    select
        month,
        team_id,
        rep_id,
        {{ sum_or_zero('quota_amount', 'decimal(38, 4)') }} as quota_amount,
        {{ sum_or_zero('won_amount', 'decimal(38, 4)') }} as won_amount
    from rep_rows
    group by
        month,
        team_id,
        rep_id
),

rep_attainment as (
    select
        month,
        team_id,
        rep_id,
        quota_amount,
        won_amount,
        quota_amount > 0 as has_quota,
        quota_amount > 0
        and won_amount >= quota_amount * {{ threshold }} as is_meeting_quota
    from rep_months
),

rolled_up as (
    {% call rollup_by_level('rep_attainment') %}
        {{ sum_or_zero('rep_attainment.quota_amount', 'decimal(38, 4)') }}
            as quota_amount,
        {{ sum_or_zero('rep_attainment.won_amount', 'decimal(38, 4)') }}
            as won_amount,
        {{ count_where('rep_attainment.has_quota') }} as reps_with_quota,
        {{ count_where('rep_attainment.is_meeting_quota') }} as reps_meeting_quota
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        quota_amount,
        won_amount,
        {{ currency_code_column() }}
        {{ safe_divide('won_amount', 'quota_amount') }} as attainment,
        reps_with_quota,
        reps_meeting_quota,
        {{ percent_of('reps_meeting_quota', 'reps_with_quota') }}
            as pct_reps_meeting_quota,
        case
            when level = 'rep' and reps_with_quota = 1 then reps_meeting_quota = 1
        end as met_quota
    from rolled_up
)

select * from final
{#- the CRM has no quotas (HubSpot without quotas.csv): no rows, not wrong ones #}
{% if crm_lacks('quotas') %}
where false
{% endif %}
