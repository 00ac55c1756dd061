{#- KPI_SPEC section 2: a mart has a rep row for every active rep in every month
    of the range, and for any user who owns something the mart counts in that
    month (in kpi_quota_attainment a quota > 0 counts too), and no other rep rows.
    Derived here from the entity marts, independently of the marts' own SQL. -#}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

active_reps as (
    select
        month,
        rep_id
    from {{ ref('int_rep_months_spined') }}
),

opportunities as (
    select
        close_month as month,
        owner_id as rep_id,
        is_closed,
        is_won
    from {{ ref('fct_opportunities') }}
),

leads as (
    select
        created_month as month,
        owner_id as rep_id
    from {{ ref('fct_leads') }}
),

activities as (
    select
        activity_month as month,
        owner_id as rep_id
    from {{ ref('int_activities_aggregated') }}
),

quotas as (
    select
        quota_month as month,
        user_id as rep_id
    from {{ ref('stg_crm__quotas') }}
    where quota_amount > 0
),

counted_owners as (
    select 'kpi_win_rate' as mart, month, rep_id from opportunities where is_closed
    union
    select 'kpi_avg_deal_size', month, rep_id from opportunities where is_won
    union
    select 'kpi_days_to_close', month, rep_id from opportunities where is_won
    union
    select 'kpi_monthly_sales', month, rep_id from opportunities where is_won
    union
    select 'kpi_quota_attainment', month, rep_id from opportunities where is_won
    union
    select 'kpi_quota_attainment', month, rep_id from quotas
    union
    select 'kpi_lead_conversion', month, rep_id from leads
    union
    select 'kpi_lead_response_time', month, rep_id from leads
    union
    select 'kpi_sales_effort', month, rep_id from activities
),

marts as (
    select mart from (
        values
            ('kpi_win_rate'),
            ('kpi_avg_deal_size'),
            ('kpi_days_to_close'),
            ('kpi_monthly_sales'),
            ('kpi_quota_attainment'),
            ('kpi_lead_conversion'),
            ('kpi_lead_response_time'),
            ('kpi_sales_effort')
    ) as mart_names (mart)
),

expected as (
    select
        marts.mart,
        active_reps.month,
        active_reps.rep_id
    from marts
    cross join active_reps
    where {{ crm_mart_expected('marts.mart') }}

    union

    select
        counted_owners.mart,
        counted_owners.month,
        counted_owners.rep_id
    from counted_owners
    inner join months
        on counted_owners.month = months.month
    where {{ crm_mart_expected('counted_owners.mart') }}
),

actual as (
    {%- for mart in [
        'kpi_win_rate', 'kpi_avg_deal_size', 'kpi_days_to_close', 'kpi_monthly_sales',
        'kpi_quota_attainment', 'kpi_lead_conversion', 'kpi_lead_response_time',
        'kpi_sales_effort',
    ] %}
    select
        '{{ mart }}' as mart,
        month,
        rep_id
    from {{ ref(mart) }}
    where level = 'rep'
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

missing_rows as (
    select * from expected
    except all
    select * from actual
),

extra_rows as (
    select * from actual
    except all
    select * from expected
),

differences as (
    select
        *,
        'missing' as problem
    from missing_rows

    union all

    select
        *,
        'extra' as problem
    from extra_rows
)

select * from differences
