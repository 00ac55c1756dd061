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

sequenced as (
    select
        OpportunityId,
        StageName,
        CreatedDate,
        lag(StageName) over (
            partition by OpportunityId order by CreatedDate, Id
        ) as previous_stage_name,
        row_number() over (partition by OpportunityId order by CreatedDate, Id) as position,
        max(_load_id) over (partition by OpportunityId) as deal_load_id
    from history
),

final as (
    select
        OpportunityId as opportunity_id,
        StageName as stage_name,
        CreatedDate as entered_at,
        deal_load_id as _load_id
    from sequenced
    where position = 1 or StageName is distinct from previous_stage_name
)

select * from final
