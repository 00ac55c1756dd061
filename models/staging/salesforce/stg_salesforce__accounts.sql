{{ config(enabled=crm_enabled('salesforce', 'accounts')) }}

with

accounts as (
    select * from {{ source('salesforce', 'Account') }}
),

final as (
    select
        Id as account_id,
        Name as account_name,
        Industry as industry,
        OwnerId as owner_id,
        CreatedDate as created_at,
        _load_id
    from accounts
)

select * from final
