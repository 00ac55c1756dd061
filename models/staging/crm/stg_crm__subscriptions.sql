with

source as (
    select * from {{ crm_table('subscriptions') }}
),

renamed as (
    select
        subscription_id,
        account_id,
        started_at as start_date,
        ended_at as end_date,
        mrr,
        currency_code,
        _load_id
    from source
)

select * from renamed
