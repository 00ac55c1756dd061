{#- One row per deal, for analysts: owner and team, current stage, amount,
    won/lost/closed flags, close month and days to close. -#}

with

opportunities as (
    select * from {{ ref('int_opportunities_enriched') }}
),

final as (
    select
        opportunity_id,
        opportunity_name,
        opportunity_type,
        account_id,
        lead_id,
        owner_id,
        owner_team_id as team_id,
        stage_name,
        stage_order,
        amount,
        {{ currency_code_column() }}
        is_closed,
        is_won,
        is_lost,
        created_at,
        created_month,
        close_date,
        close_month,
        first_touch_at,
        days_to_close
    from opportunities
)

select * from final
