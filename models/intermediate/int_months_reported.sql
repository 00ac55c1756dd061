{#- The reporting range (KPI_SPEC section 2): every month from the earliest to the
    latest month seen in leads, deals (created, and closed by close_date),
    activities and quotas; the vars start_month / end_month override either end. -#}

with

leads as (
    select created_at from {{ ref('stg_crm__leads') }}
),

opportunities as (
    select
        created_at,
        close_date
    from {{ ref('stg_crm__opportunities') }}
),

activity_months as (
    {# the activities are already aggregated by month: no second scan of them #}
    select activity_month from {{ ref('int_activities_aggregated') }}
),

quotas as (
    select quota_month from {{ ref('stg_crm__quotas') }}
),

data_bounds as (
    select
        {{ to_reporting_month('min(created_at)') }} as first_month,
        {{ to_reporting_month('max(created_at)') }} as last_month
    from leads

    union all

    select
        {{ to_reporting_month('min(created_at)') }} as first_month,
        {{ to_reporting_month('max(created_at)') }} as last_month
    from opportunities

    union all

    {# close_date is NULL on open deals (stg_crm__opportunities) #}
    select
        {{ month_of('min(close_date)') }} as first_month,
        {{ month_of('max(close_date)') }} as last_month
    from opportunities

    union all

    select
        min(activity_month) as first_month,
        max(activity_month) as last_month
    from activity_months

    union all

    select
        {{ month_of('min(quota_month)') }} as first_month,
        {{ month_of('max(quota_month)') }} as last_month
    from quotas
),

range_bounds as (
    select
        coalesce({{ month_var('start_month') }}, min(first_month)) as first_month,
        coalesce({{ month_var('end_month') }}, max(last_month)) as last_month
    from data_bounds
),

month_starts as (
    select
        unnest(
            generate_series(
                cast(first_month as timestamp),
                cast(last_month as timestamp),
                interval 1 month
            )
        ) as month_start
    from range_bounds
),

months as (
    select cast(month_start as date) as month
    from month_starts
),

final as (
    select
        month,
        last_day(month) as month_last_day,
        cast(month - interval 1 month as date) as previous_month,
        cast(month + interval 1 month as date) as next_month
    from months
)

select * from final
