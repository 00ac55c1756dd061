with

source as (
    select * from {{ crm_table('quotas') }}
),

renamed as (
    select
        user_id,
        month as quota_month,
        quota_amount,
        currency_code,
        _load_id
    from source
)

select * from renamed
