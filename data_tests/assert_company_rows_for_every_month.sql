{#- Every KPI mart has exactly one company row for every month of the range
    (kpi_stage_duration: one per stage that is not closed). -#}

{%- set marts = [
    'kpi_win_rate', 'kpi_lead_conversion', 'kpi_avg_deal_size', 'kpi_days_to_close',
    'kpi_quota_attainment', 'kpi_monthly_sales', 'kpi_churn', 'kpi_lead_response_time',
    'kpi_sales_effort',
] %}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

open_stages as (
    select stage_name from {{ ref('stg_crm__pipeline_stages') }}
    where not is_closed
),

company_rows as (
    {%- for mart in marts %}
    select
        '{{ mart }}' as mart,
        month,
        null as stage_name
    from {{ ref(mart) }}
    where level = 'company'
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

stage_company_rows as (
    select
        'kpi_stage_duration' as mart,
        month,
        stage_name
    from {{ ref('kpi_stage_duration') }}
    where level = 'company'
),

expected as (
    {%- for mart in marts %}
    select
        '{{ mart }}' as mart,
        month,
        null as stage_name
    from months
    union all
    {%- endfor %}
    select
        'kpi_stage_duration' as mart,
        months.month,
        open_stages.stage_name
    from months
    cross join open_stages
),

actual as (
    select * from company_rows
    union all
    select * from stage_company_rows
),

missing_rows as (
    select * from expected where {{ crm_mart_expected('mart') }}
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
