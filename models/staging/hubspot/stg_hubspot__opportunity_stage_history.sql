{#- opportunity_stage_history from deal_stage (active rows), or, when it has
    no rows, from deal_property_history rows of `dealstage`; per deal in time
    order, the first row and every row whose stage differs from the previous
    one. `_load_id`: the newest load among the deal's rows. -#}
{{ config(enabled=crm_enabled('hubspot', 'opportunity_stage_history')) }}

with

deal_stages as (
    select deal_id, value as stage_name, date_entered as entered_at, _load_id
    from {{ source('hubspot', 'deal_stage') }}
),

property_changes as (
    select deal_id, value as stage_name, timestamp as entered_at, _load_id
    from {{ source('hubspot', 'deal_property_history') }}
    where name = 'dealstage' and value is not null
),

entries as (
    select * from deal_stages
    union all
    select * from property_changes
    where (select count(*) from deal_stages) = 0
),

final as (
    {{ stage_changes('entries', 'deal_id', 'stage_name', 'entered_at', 'stage_name') }}
)

select * from final
