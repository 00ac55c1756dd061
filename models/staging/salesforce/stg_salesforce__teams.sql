{#- teams from UserRole, plus the synthetic team `no_role` when some standard
    user has no role. -#}
{{ config(enabled=crm_enabled('salesforce', 'teams')) }}

with

roles as (
    select * from {{ source('salesforce', 'UserRole') }}
),

users_without_role as (
    select max(_load_id) as _load_id
    from {{ source('salesforce', 'User') }}
    where coalesce(UserType, 'Standard') = 'Standard' and UserRoleId is null
    having count(*) > 0
),

final as (
    select
        Id as team_id,
        Name as team_name,
        cast(null as varchar) as region,
        _load_id
    from roles
    union all
    select
        'no_role' as team_id,
        'No role' as team_name,
        cast(null as varchar) as region,
        _load_id
    from users_without_role
)

select * from final
