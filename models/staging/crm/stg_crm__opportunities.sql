with

source as (
    select * from {{ crm_table('opportunities') }}
),

renamed as (
    select
        opportunity_id,
        account_id,
        owner_id,
        lead_id,
        opportunity_name,
        opportunity_type,
        amount,
        stage_name,
        is_closed,
        {# kept-but-suspicious input: `is_won` without `is_closed` is not won #}
        is_closed and is_won as is_won,
        is_closed and not is_won as is_lost,
        created_at,
        {# kept-but-suspicious input: the close_date of an open deal is ignored #}
        case when is_closed then close_date end as close_date,
        currency_code,
        _load_id
    from source
)

select * from renamed
