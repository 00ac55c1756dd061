{#- One row per lead with its owner's team, its cohort month, whether it became
    a customer (its converted_opportunity_id is a won deal) and its first
    response (KPI_SPEC section 3). -#}

with

leads as (
    select * from {{ ref('stg_crm__leads') }}
),

users as (
    select
        user_id,
        team_id
    from {{ ref('stg_crm__users') }}
),

won_opportunities as (
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where is_won
),

lead_activities as (
    select
        lead_id,
        first_response_at
    from {{ ref('int_lead_activities_aggregated') }}
),

joined as (
    select
        leads.lead_id,
        leads.owner_id,
        users.team_id as owner_team_id,
        leads.lead_source,
        leads.lead_status,
        leads.created_at,
        leads.mql_at,
        leads.sql_at,
        leads.converted_at,
        leads.converted_account_id,
        leads.converted_opportunity_id,
        won_opportunities.opportunity_id is not null as is_customer,
        lead_activities.first_response_at
    from leads
    left join users
        on leads.owner_id = users.user_id
    left join won_opportunities
        on leads.converted_opportunity_id = won_opportunities.opportunity_id
    left join lead_activities
        on leads.lead_id = lead_activities.lead_id
),

final as (
    select
        lead_id,
        owner_id,
        owner_team_id,
        lead_source,
        lead_status,
        created_at,
        {{ month_of('created_at') }} as created_month,
        mql_at,
        sql_at,
        converted_at,
        converted_account_id,
        converted_opportunity_id,
        mql_at is not null as is_mql,
        sql_at is not null as is_sql,
        is_customer,
        first_response_at,
        epoch_us(first_response_at) - epoch_us(created_at) as response_microseconds,
        (epoch_us(first_response_at) - epoch_us(created_at)) / 60000000.0
            as response_minutes
    from joined
)

select * from final
