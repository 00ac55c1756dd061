{#- The calendar and fiscal year and quarter of every month of the reporting
    range (KPI_SPEC section 5). The fiscal year starts on the first day of
    `fiscal_year_start_month` (default 1: fiscal = calendar) and is named by the
    calendar year in which it ends. Every date is the month's date shifted back
    to the start of its fiscal year, truncated, then shifted forward again. -#}
{%- set start_month = var('fiscal_year_start_month', 1) | int -%}
{%- set shift = 'interval ' ~ (start_month - 1) ~ ' month' -%}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

months_shifted as (
    {# the month as a month of a fiscal year that started in January #}
    select
        month,
        cast(month - {{ shift }} as date) as fiscal_month
    from months
),

final as (
    select
        month,
        year(month) as calendar_year,
        quarter(month) as calendar_quarter,
        year(fiscal_month) + {{ 0 if start_month == 1 else 1 }} as fiscal_year,
        quarter(fiscal_month) as fiscal_quarter,
        cast(date_trunc('quarter', fiscal_month) + {{ shift }} as date)
            as fiscal_quarter_start,
        cast(date_trunc('year', fiscal_month) + {{ shift }} as date) as fiscal_year_start
    from months_shifted
)

select * from final
