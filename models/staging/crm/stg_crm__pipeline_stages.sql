with

source as (
    select * from {{ crm_table('pipeline_stages') }}
),

renamed as (
    select
        stage_name,
        stage_order,
        probability,
        is_closed,
        {# a stage can only be won when it is closed #}
        is_closed and is_won as is_won,
        _load_id
    from source
)

select * from renamed
