{#- The rep-by-month spine: a rep is active in a month when role = 'rep',
    hired_at <= the month's last day, and terminated_at is NULL or >= the month's
    first day (KPI_SPEC section 2). Their team is users.team_id today. -#}

with

months as (
    select
        month,
        month_last_day
    from {{ ref('int_months_reported') }}
),

reps as (
    select
        user_id,
        team_id,
        hired_date,
        terminated_date
    from {{ ref('stg_crm__users') }}
    where role = 'rep'
),

final as (
    select
        months.month,
        reps.team_id,
        reps.user_id as rep_id
    from months
    inner join reps
        on reps.hired_date <= months.month_last_day
        and (reps.terminated_date is null or reps.terminated_date >= months.month)
)

select * from final
