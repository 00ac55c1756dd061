{#- One row per team. -#}

with

teams as (
    select * from {{ ref('stg_crm__teams') }}
),

users as (
    select
        team_id,
        role
    from {{ ref('stg_crm__users') }}
),

team_sizes as (
    select
        team_id,
        {{ count_where("role = 'rep'") }} as reps,
        {{ count_where("role = 'manager'") }} as managers
    from users
    where team_id is not null
    group by team_id
),

final as (
    select
        teams.team_id,
        teams.team_name,
        teams.region,
        coalesce(team_sizes.reps, 0) as reps,
        coalesce(team_sizes.managers, 0) as managers
    from teams
    left join team_sizes
        on teams.team_id = team_sizes.team_id
)

select * from final
