{#- One row per stage-history row of a known deal in a known stage, in the order
    of KPI_SPEC section 3 (entered_at, ties by stage_order, then stage_name). Each
    row opens an interval in its stage that ends when the next row is entered;
    rows of unknown deals or stages are ignored, so they never end an interval.

    Incremental, by deal: a build re-sequences the deals touched since the last
    one (new history rows, a new or changed deal, an owner whose team changed;
    every deal when a stage changed) and replaces their rows. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='opportunity_id',
) }}

{# `not materialized`: the import CTEs are read several times in an incremental
   run; left inline, each read gets its own filters pushed into the scan #}

with

stage_history as not materialized (
    select
        opportunity_id,
        stage_name,
        entered_at,
        _load_id
    from {{ ref('stg_crm__opportunity_stage_history') }}
),

opportunities as not materialized (
    select
        opportunity_id,
        owner_id,
        _load_id
    from {{ ref('stg_crm__opportunities') }}
),

pipeline_stages as not materialized (
    select
        stage_name,
        stage_order,
        is_closed,
        _load_id
    from {{ ref('stg_crm__pipeline_stages') }}
),

users as not materialized (
    select
        user_id,
        team_id,
        _load_id
    from {{ ref('stg_crm__users') }}
),

{% if is_incremental() %}
touched_deals as (
    select opportunity_id from stage_history
    where _load_id > {{ last_seen_load_id() }}
    union
    select opportunity_id from opportunities
    where _load_id > {{ last_seen_load_id() }}
    union
    select opportunities.opportunity_id
    from opportunities
    inner join users
        on opportunities.owner_id = users.user_id
    where users._load_id > {{ last_seen_load_id() }}
    union
    select opportunity_id from opportunities
    where exists (
        select 1 from pipeline_stages where _load_id > {{ last_seen_load_id() }}
    )
),
{% endif %}

known_entries as (
    select
        stage_history.opportunity_id,
        opportunities.owner_id,
        users.team_id as owner_team_id,
        stage_history.stage_name,
        pipeline_stages.stage_order,
        pipeline_stages.is_closed as is_closed_stage,
        stage_history.entered_at,
        greatest(
            stage_history._load_id,
            opportunities._load_id,
            users._load_id,
            pipeline_stages._load_id
        ) as _load_id
    from stage_history
    inner join opportunities
        on stage_history.opportunity_id = opportunities.opportunity_id
    inner join pipeline_stages
        on stage_history.stage_name = pipeline_stages.stage_name
    left join users
        on opportunities.owner_id = users.user_id
    {% if is_incremental() %}
    where stage_history.opportunity_id in (
        select touched_deals.opportunity_id from touched_deals
    )
    {% endif %}
),

sequenced as (
    select
        *,
        row_number() over deal_entries as entry_number,
        lead(entered_at) over deal_entries as left_at,
        {# every row of a deal carries the newest load among all its inputs, so
           that the marts see every interval of a touched deal as changed #}
        max(_load_id) over (partition by opportunity_id) as deal_load_id
    from known_entries
    window deal_entries as (
        partition by opportunity_id
        order by entered_at, stage_order, stage_name
    )
),

final as (
    select
        opportunity_id,
        entry_number,
        owner_id,
        owner_team_id,
        stage_name,
        stage_order,
        is_closed_stage,
        entered_at,
        left_at,
        {{ to_reporting_month('entered_at') }} as entered_month,
        {{ to_reporting_month('left_at') }} as left_month,
        {# an exit: an interval that has ended, in a stage that is not closed #}
        left_at is not null and not is_closed_stage as is_exit,
        case
            when left_at is not null and not is_closed_stage
                then {{ microseconds_between('entered_at', 'left_at') }}
        end as microseconds_in_stage,
        case
            when left_at is not null and not is_closed_stage
                then {{ safe_divide(
                    microseconds_between('entered_at', 'left_at'), '86400000000.0'
                ) }}
        end as days_in_stage,
        deal_load_id as _load_id
    from sequenced
)

select * from final
