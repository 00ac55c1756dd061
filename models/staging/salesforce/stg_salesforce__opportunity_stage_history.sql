{#- opportunity_stage_history from OpportunityHistory, which logs every change
    of amount, close date, probability and stage: per deal, in CreatedDate
    order (ties by Id), the first row and every row whose StageName differs
    from the previous row's. Whether a row is kept depends on its neighbours,
    so `_load_id` is the newest load among the deal's history rows. -#}
{{ config(enabled=crm_enabled('salesforce', 'opportunity_stage_history'), materialized='table') }}

with

history as (
    select * from {{ source('salesforce', 'OpportunityHistory') }}
),

final as (
    {{ stage_changes('history', 'OpportunityId', 'StageName', 'CreatedDate', 'Id') }}
)

select * from final
