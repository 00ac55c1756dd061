with

source as (
    select * from {{ crm_table('activities') }}
),

renamed as (
    select
        activity_id,
        owner_id,
        activity_type as activity_type_raw,
        {{ normalize_activity_type('activity_type') }} as activity_type,
        occurred_at,
        lead_id,
        opportunity_id,
        account_id,
        _load_id
    from source
)

select * from renamed
