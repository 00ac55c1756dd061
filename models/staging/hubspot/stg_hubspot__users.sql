{#- users from owner (SOURCES.md): every owner is a rep (HubSpot has no
    managers), on their primary team (`no_team` without one); terminated at
    the date of updated_at when deactivated (no active_user_id) or archived. -#}
{{ config(enabled=crm_enabled('hubspot', 'users')) }}

with

owners as (
    select * from {{ source('hubspot', 'owner') }}
),

primary_teams as (
    select
        owner_id,
        arg_min(team_id, (not coalesce(is_primary, false), team_id)) as team_id,
        max(_load_id) as _load_id
    from {{ source('hubspot', 'owner_team') }}
    group by owner_id
),

final as (
    select
        owners.owner_id as user_id,
        coalesce(
            nullif(trim(concat_ws(' ', owners.first_name, owners.last_name)), ''),
            owners.email,
            owners.owner_id
        ) as full_name,
        owners.email,
        'rep' as role,
        coalesce(primary_teams.team_id, 'no_team') as team_id,
        cast(null as varchar) as manager_id,
        cast(owners.created_at as date) as hired_at,
        case
            when owners.active_user_id is null or owners.archived
                then cast(owners.updated_at as date)
        end as terminated_at,
        greatest(owners._load_id, primary_teams._load_id) as _load_id
    from owners
    left join primary_teams on primary_teams.owner_id = owners.owner_id
)

select * from final
