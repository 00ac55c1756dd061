{#- teams from team, plus `no_team` when some owner has no team. -#}
{{ config(enabled=crm_enabled('hubspot', 'teams')) }}

with

teams as (
    select * from {{ source('hubspot', 'team') }}
),

owners_without_team as (
    select max(owners._load_id) as _load_id
    from {{ source('hubspot', 'owner') }} as owners
    anti join {{ source('hubspot', 'owner_team') }} as owner_teams
        on owner_teams.owner_id = owners.owner_id
    having count(*) > 0
),

final as (
    select id as team_id, name as team_name, cast(null as varchar) as region, _load_id
    from teams
    union all
    select 'no_team' as team_id, 'No team' as team_name, cast(null as varchar) as region, _load_id
    from owners_without_team
)

select * from final
