with

source as (
    select * from {{ crm_table('users') }}
),

renamed as (
    select
        user_id,
        full_name,
        email,
        role,
        team_id,
        manager_id,
        hired_at as hired_date,
        terminated_at as terminated_date,
        _load_id
    from source
)

select * from renamed
