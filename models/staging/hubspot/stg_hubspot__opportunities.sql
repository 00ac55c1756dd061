{#- opportunities from deal, not merged into another deal: the stage's
    closed/won flags, the first associated company (by id; `no_account`
    without one), close_date only for closed deals, no owner -> `unowned`.
    HubSpot records no lead a deal came from: lead_id is NULL. -#}
{{ config(enabled=crm_enabled('hubspot', 'opportunities')) }}

with

deals as (
    select * from {{ source('hubspot', 'deal') }}
),

merged as (
    select merged_deal_id from {{ source('hubspot', 'merged_deal') }}
),

stages as (
    select stage_name, is_closed, is_won, _load_id
    from {{ ref('stg_hubspot__pipeline_stages') }}
),

first_companies as (
    select deal_id, min(company_id) as company_id, max(_load_id) as _load_id
    from {{ source('hubspot', 'deal_company') }}
    group by deal_id
),

final as (
    select
        deals.deal_id as opportunity_id,
        coalesce(first_companies.company_id, 'no_account') as account_id,
        coalesce(deals.owner_id, 'unowned') as owner_id,
        cast(null as varchar) as lead_id,
        deals.property_dealname as opportunity_name,
        lower(deals.property_dealtype) as opportunity_type,
        deals.property_amount as amount,
        deals.deal_pipeline_stage_id as stage_name,
        coalesce(stages.is_closed, false) as is_closed,
        coalesce(stages.is_won, false) as is_won,
        deals.property_createdate as created_at,
        case
            when stages.is_closed then cast(deals.property_closedate as date)
        end as close_date,
        deals.property_deal_currency_code as currency_code,
        greatest(deals._load_id, stages._load_id, first_companies._load_id) as _load_id
    from deals
    left join stages on stages.stage_name = deals.deal_pipeline_stage_id
    left join first_companies on first_companies.deal_id = deals.deal_id
    where deals.deal_id not in (select merged_deal_id from merged)
)

select * from final
