with

source as (
    select * from {{ crm_table('opportunity_stage_history') }}
),

renamed as (
    select
        opportunity_id,
        stage_name,
        entered_at,
        _load_id
    from source
)

select * from renamed
