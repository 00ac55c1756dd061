{#- leads from contact (SOURCES.md): MQL / SQL / customer dates from the
    lifecycle-stage dates; the converted deal is the contact's first
    associated deal (by id) that is won. `status`: `converted` with such a
    deal, else the lead status, else the lifecycle stage, lower-cased
    (docs/crm_sources.md). `_load_id`: the newest load among the contact, its
    associations and their deals. -#}
{{ config(enabled=crm_enabled('hubspot', 'leads')) }}

with

contacts as (
    select * from {{ source('hubspot', 'contact') }}
),

deal_contacts as (
    select deal_id, contact_id, _load_id from {{ source('hubspot', 'deal_contact') }}
),

deals as (
    select opportunity_id, is_won, _load_id from {{ ref('stg_hubspot__opportunities') }}
),

contact_deals as (
    select
        deal_contacts.contact_id,
        min(deals.opportunity_id) filter (where deals.is_won) as won_opportunity_id,
        greatest(max(deal_contacts._load_id), max(deals._load_id)) as _load_id
    from deal_contacts
    left join deals on deals.opportunity_id = deal_contacts.deal_id
    group by deal_contacts.contact_id
),

final as (
    select
        contacts.id as lead_id,
        contacts.property_createdate as created_at,
        coalesce(contacts.property_hubspot_owner_id, 'unowned') as owner_id,
        contacts.property_hs_analytics_source as lead_source,
        case
            when contact_deals.won_opportunity_id is not null then 'converted'
            else lower(
                coalesce(
                    contacts.property_hs_lead_status, contacts.property_lifecyclestage, 'new'
                )
            )
        end as status,
        contacts.property_hs_lifecyclestage_marketingqualifiedlead_date as mql_at,
        contacts.property_hs_lifecyclestage_salesqualifiedlead_date as sql_at,
        contacts.property_hs_lifecyclestage_customer_date as converted_at,
        cast(null as varchar) as converted_account_id,
        contact_deals.won_opportunity_id as converted_opportunity_id,
        greatest(contacts._load_id, contact_deals._load_id) as _load_id
    from contacts
    left join contact_deals on contact_deals.contact_id = contacts.id
)

select * from final
