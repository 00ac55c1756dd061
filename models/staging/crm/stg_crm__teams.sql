with

source as (
    select * from {{ crm_table('teams') }}
),

renamed as (
    select
        team_id,
        team_name,
        region,
        _load_id
    from source
)

select * from renamed
