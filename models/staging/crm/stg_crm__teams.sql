with

source as (
    select * from {{ source('crm', 'teams') }}
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
