{#- users from User (SOURCES.md): only Standard users; the team is the role
    (`no_role` when empty); a manager is a user some other standard user
    reports to who owns no opportunity. Roles depend on every user and deal,
    so a row's `_load_id` is the newest load among all of them. -#}
{{ config(enabled=crm_enabled('salesforce', 'users'), materialized='table') }}

with

users as (
    select * from {{ source('salesforce', 'User') }}
    where coalesce(UserType, 'Standard') = 'Standard'
),

opportunities as (
    select OwnerId, _load_id from ({{ salesforce_current_opportunities() }})
),

managers as (
    select distinct ManagerId as user_id from users where ManagerId is not null
),

deal_owners as (
    select distinct OwnerId as user_id from opportunities
),

newest_load as (
    select greatest(
        (select max(_load_id) from users),
        (select max(_load_id) from opportunities)
    ) as _load_id
),

final as (
    select
        users.Id as user_id,
        coalesce(
            users.Name, nullif(trim(concat_ws(' ', users.FirstName, users.LastName)), '')
        ) as full_name,
        users.Email as email,
        case
            when managers.user_id is not null and deal_owners.user_id is null then 'manager'
            else 'rep'
        end as role,
        coalesce(users.UserRoleId, 'no_role') as team_id,
        users.ManagerId as manager_id,
        cast(users.CreatedDate as date) as hired_at,
        case
            when users.IsActive is distinct from false then null
            else cast(users.LastModifiedDate as date)
        end as terminated_at,
        greatest(users._load_id, newest_load._load_id) as _load_id
    from users
    cross join newest_load
    left join managers on managers.user_id = users.Id
    left join deal_owners on deal_owners.user_id = users.Id
)

select * from final
