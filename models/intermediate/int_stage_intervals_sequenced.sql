{#- One row per stage-history row of a known deal in a known stage, in the order
    of KPI_SPEC section 3 (entered_at, ties by stage_order, then stage_name). Each
    row opens an interval in its stage that ends when the next row is entered;
    rows of unknown deals or stages are ignored, so they never end an interval. -#}

with

stage_history as (
    select
        opportunity_id,
        stage_name,
        entered_at
    from {{ ref('stg_crm__opportunity_stage_history') }}
),

opportunities as (
    select
        opportunity_id,
        owner_id
    from {{ ref('stg_crm__opportunities') }}
),

pipeline_stages as (
    select
        stage_name,
        stage_order,
        is_closed
    from {{ ref('stg_crm__pipeline_stages') }}
),

users as (
    select
        user_id,
        team_id
    from {{ ref('stg_crm__users') }}
),

known_entries as (
    select
        stage_history.opportunity_id,
        opportunities.owner_id,
        users.team_id as owner_team_id,
        stage_history.stage_name,
        pipeline_stages.stage_order,
        pipeline_stages.is_closed as is_closed_stage,
        stage_history.entered_at
    from stage_history
    inner join opportunities
        on stage_history.opportunity_id = opportunities.opportunity_id
    inner join pipeline_stages
        on stage_history.stage_name = pipeline_stages.stage_name
    left join users
        on opportunities.owner_id = users.user_id
),

sequenced as (
    select
        *,
        row_number() over deal_entries as entry_number,
        lead(entered_at) over deal_entries as left_at
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
        {{ month_of('entered_at') }} as entered_month,
        {{ month_of('left_at') }} as left_month,
        {# an exit: an interval that has ended, in a stage that is not closed #}
        left_at is not null and not is_closed_stage as is_exit,
        case
            when left_at is not null and not is_closed_stage
                then epoch_us(left_at) - epoch_us(entered_at)
        end as microseconds_in_stage,
        case
            when left_at is not null and not is_closed_stage
                then (epoch_us(left_at) - epoch_us(entered_at)) / 86400000000.0
        end as days_in_stage
    from sequenced
)

select * from final
