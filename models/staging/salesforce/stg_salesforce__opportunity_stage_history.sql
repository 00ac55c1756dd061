{#- opportunity_stage_history from OpportunityHistory, which logs every change
    of amount, close date, probability and stage: per deal, in CreatedDate
    order (ties by Id), the first row and every row whose StageName differs
    from the previous row's. Whether a row is kept depends on its neighbours,
    so `_load_id` is the newest load among the deal's history rows. A
    replicated copy in history mode without OpportunityHistory is read the
    same way: the versions of `Opportunity`, by `_fivetran_start`. -#}
{{ config(enabled=crm_enabled('salesforce', 'opportunity_stage_history'), materialized='table') }}

with

logged as (
    select OpportunityId, StageName, CreatedDate, Id, _load_id
    from {{ source('salesforce', 'OpportunityHistory') }}
),

{#- a replicated copy in history mode without OpportunityHistory: the versions
    of the deals that exist now, each entered at its `_fivetran_start` #}
versions as (
    select Id as OpportunityId, StageName, _fivetran_start as CreatedDate, Id, _load_id
    from {{ source('salesforce', 'Opportunity') }}
    where _fivetran_start is not null
        and Id in (select Id from ({{ salesforce_current_opportunities() }}))
        {#- the source, not `logged`: a CTE read twice is materialized #}
        and not exists (select 1 from {{ source('salesforce', 'OpportunityHistory') }})
),

history as (
    select * from logged
    union all
    select * from versions
),

final as (
    {{ stage_changes('history', 'OpportunityId', 'StageName', 'CreatedDate', 'Id') }}
)

select * from final
