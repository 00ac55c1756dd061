with

source as (
    select * from {{ crm_table('accounts') }}
),

renamed as (
    select
        account_id,
        account_name,
        industry,
        owner_id,
        created_at,
        _load_id
    from source
)

select * from renamed
