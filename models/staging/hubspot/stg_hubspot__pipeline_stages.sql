{#- pipeline_stages from deal_pipeline_stage: the stage id is the name (labels
    repeat across pipelines; the label is kept in `stage_label`);
    display_order + 1 when the orders start at 0; won = closed_won (or a
    probability of 1 when closed_won is empty). -#}
{{ config(enabled=crm_enabled('hubspot', 'pipeline_stages')) }}

with

stages as (
    select * from {{ source('hubspot', 'deal_pipeline_stage') }}
),

final as (
    select
        stage_id as stage_name,
        cast(
            display_order + case when (select min(display_order) from stages) = 0 then 1 else 0 end
            as bigint
        ) as stage_order,
        cast(probability as double) as probability,
        coalesce(is_closed, false) as is_closed,
        coalesce(closed_won, probability = 1, false) as is_won,
        label as stage_label,
        (select max(_load_id) from stages) as _load_id
    from stages
)

select * from final
