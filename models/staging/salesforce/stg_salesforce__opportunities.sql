{#- opportunities from Opportunity (SOURCES.md). `lead_id` is the lead
    converted into the deal (the earliest-created when several, ties by Id);
    a lead's link can move to another deal, so `_load_id` is the newest load
    among the deal and every lead. `close_date` only for closed deals
    (Salesforce fills an expected date on open ones). A history-mode copy
    gives each deal's newest version. -#}
{{ config(enabled=crm_enabled('salesforce', 'opportunities'), materialized='table') }}

with

opportunities as (
    {{ salesforce_current_opportunities() }}
),

leads as (
    select Id, CreatedDate, ConvertedOpportunityId, _load_id
    from {{ source('salesforce', 'Lead') }}
),

stages as (
    select stage_name, is_closed, is_won from {{ ref('stg_salesforce__pipeline_stages') }}
),

converted_leads as (
    select
        ConvertedOpportunityId as opportunity_id,
        arg_min(Id, (CreatedDate, Id)) as lead_id
    from leads
    where ConvertedOpportunityId is not null
    group by ConvertedOpportunityId
),

final as (
    select
        opportunities.Id as opportunity_id,
        opportunities.AccountId as account_id,
        opportunities.OwnerId as owner_id,
        converted_leads.lead_id,
        opportunities.Name as opportunity_name,
        replace(lower(opportunities.Type), ' ', '_') as opportunity_type,
        opportunities.Amount as amount,
        opportunities.StageName as stage_name,
        coalesce(opportunities.IsClosed, stages.is_closed, false) as is_closed,
        coalesce(opportunities.IsWon, stages.is_won, false) as is_won,
        opportunities.CreatedDate as created_at,
        case
            when coalesce(opportunities.IsClosed, stages.is_closed, false)
                then cast(opportunities.CloseDate as date)
        end as close_date,
        opportunities.CurrencyIsoCode as currency_code,
        greatest(opportunities._load_id, (select max(_load_id) from leads)) as _load_id
    from opportunities
    left join converted_leads on converted_leads.opportunity_id = opportunities.Id
    left join stages on stages.stage_name = opportunities.StageName
)

select * from final
