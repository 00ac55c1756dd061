with

source as (
    select * from {{ crm_table('exchange_rates') }}
),

renamed as (
    select
        currency_code,
        valid_from,
        rate,
        _load_id
    from source
)

select * from renamed
