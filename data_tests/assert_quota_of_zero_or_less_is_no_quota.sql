{#- A quotas row with quota_amount <= 0 is no quota: the rep row shows
    quota_amount 0, is not counted in reps_with_quota and has met_quota NULL. -#}

with

quotas as (
    select
        quota_month as month,
        user_id as rep_id
    from {{ ref('stg_crm__quotas') }}
    where quota_amount <= 0
),

attainment_rows as (
    select
        'kpi_quota_attainment' as mart,
        month,
        rep_id,
        quota_amount,
        reps_with_quota,
        met_quota
    from {{ ref('kpi_quota_attainment') }}
    where level = 'rep'
),

sales_rows as (
    select
        'kpi_monthly_sales' as mart,
        month,
        rep_id,
        quota_amount,
        0 as reps_with_quota,
        null as met_quota
    from {{ ref('kpi_monthly_sales') }}
    where level = 'rep'
),

rep_rows as (
    select * from attainment_rows
    union all
    select * from sales_rows
),

violations as (
    select rep_rows.*
    from rep_rows
    inner join quotas
        on rep_rows.month = quotas.month
        and rep_rows.rep_id = quotas.rep_id
    where
        rep_rows.quota_amount <> 0
        or rep_rows.reps_with_quota <> 0
        or rep_rows.met_quota is not null
)

select * from violations
