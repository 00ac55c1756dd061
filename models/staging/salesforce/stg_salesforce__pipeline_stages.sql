{#- pipeline_stages from OpportunityStage when it has rows (active stages),
    else derived from the deals: per StageName the smallest StageSortOrder seen,
    closed/won from a deal with that name and order, no probability. A stage
    named only in OpportunityHistory (or a deal stage with no sort order) is
    open and not won, ordered after all others by name. A stage from
    OpportunityStage depends on that file alone: its `_load_id` is the file's
    newest load; any other row depends on all deals and history (the names
    seen and their order), so its `_load_id` is the newest load among them. -#}
{{ config(enabled=crm_enabled('salesforce', 'pipeline_stages'), materialized='table') }}

with

stage_picklist as (
    select * from {{ source('salesforce', 'OpportunityStage') }}
    where IsActive is distinct from false
),

opportunities as (
    select StageName, StageSortOrder, IsClosed, IsWon, _load_id
    from {{ source('salesforce', 'Opportunity') }}
),

history as (
    select StageName, _load_id from {{ source('salesforce', 'OpportunityHistory') }}
),

newest_load as (
    select greatest(
        (select max(_load_id) from stage_picklist),
        (select max(_load_id) from opportunities),
        (select max(_load_id) from history)
    ) as _load_id
),

from_picklist as (
    select
        coalesce(ApiName, MasterLabel) as stage_name,
        SortOrder as stage_order,
        DefaultProbability / 100 as probability,
        coalesce(IsClosed, false) as is_closed,
        coalesce(IsWon, false) as is_won,
        true as from_picklist
    from stage_picklist
),

deal_stages as (
    select
        StageName as stage_name,
        min(StageSortOrder) as stage_order
    from opportunities
    group by StageName
),

from_deals as (
    select
        deal_stages.stage_name,
        deal_stages.stage_order,
        cast(null as double) as probability,
        coalesce(bool_or(opportunities.IsClosed), false) as is_closed,
        coalesce(bool_or(opportunities.IsWon), false) as is_won,
        false as from_picklist
    from deal_stages
    inner join opportunities
        on opportunities.StageName = deal_stages.stage_name
        and opportunities.StageSortOrder is not distinct from deal_stages.stage_order
    where (select count(*) from stage_picklist) = 0
    group by all
),

known as (
    select * from from_picklist
    union all
    select * from from_deals
),

ordered_known as (
    select * from known where stage_order is not null
),

unordered as (
    select distinct stage_name from known where stage_order is null
    union
    select distinct history.StageName
    from history
    anti join known on known.stage_name = history.StageName
),

appended as (
    select
        unordered.stage_name,
        coalesce((select max(stage_order) from ordered_known), 0)
            + row_number() over (order by unordered.stage_name) as stage_order,
        cast(null as double) as probability,
        coalesce(known.is_closed, false) as is_closed,
        coalesce(known.is_won, false) as is_won,
        false as from_picklist
    from unordered
    left join known on known.stage_name = unordered.stage_name
),

final as (
    select
        stages.stage_name,
        cast(stages.stage_order as bigint) as stage_order,
        cast(stages.probability as double) as probability,
        stages.is_closed,
        stages.is_won,
        case
            when stages.from_picklist then (select max(_load_id) from stage_picklist)
            else newest_load._load_id
        end as _load_id
    from (select * from ordered_known union all select * from appended) as stages
    cross join newest_load
)

select * from final
