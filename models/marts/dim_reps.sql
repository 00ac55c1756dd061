{#- One row per user (reps and managers) with their team today, role, manager and
    employment dates. -#}

with

users as (
    select * from {{ ref('stg_crm__users') }}
),

teams as (
    select
        team_id,
        team_name
    from {{ ref('stg_crm__teams') }}
),

managers as (
    select
        user_id,
        full_name
    from {{ ref('stg_crm__users') }}
),

final as (
    select
        users.user_id,
        users.full_name,
        users.email,
        users.role,
        users.team_id,
        teams.team_name,
        users.manager_id,
        managers.full_name as manager_name,
        users.hired_date,
        users.terminated_date
    from users
    left join teams
        on users.team_id = teams.team_id
    left join managers
        on users.manager_id = managers.user_id
)

select * from final
