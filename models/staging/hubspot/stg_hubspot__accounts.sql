{{ config(enabled=crm_enabled('hubspot', 'accounts')) }}

with

companies as (
    select * from {{ source('hubspot', 'company') }}
),

final as (
    select
        id as account_id,
        coalesce(property_name, id) as account_name,
        property_industry as industry,
        property_hubspot_owner_id as owner_id,
        property_createdate as created_at,
        _load_id
    from companies
)

select * from final
