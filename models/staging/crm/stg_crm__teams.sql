with

source as (
    select * from {{ source('crm', 'teams') }}
),

renamed as (
    select
        team_id,
        team_name,
        region
    from source
)

select * from renamed
