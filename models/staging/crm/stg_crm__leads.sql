with

source as (
    select * from {{ crm_table('leads') }}
),

renamed as (
    select
        lead_id,
        owner_id,
        lead_source,
        status as lead_status,
        created_at,
        mql_at,
        sql_at,
        converted_at,
        converted_account_id,
        converted_opportunity_id,
        _load_id
    from source
)

select * from renamed
