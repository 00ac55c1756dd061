{#- One row per lead, for analysts: owner and team, cohort month, funnel flags,
    whether it became a customer and how fast it was first answered. -#}

with

leads as (
    select * from {{ ref('int_leads_enriched') }}
),

final as (
    select
        lead_id,
        owner_id,
        owner_team_id as team_id,
        lead_source,
        lead_status,
        created_at,
        created_month,
        mql_at,
        sql_at,
        converted_at,
        converted_account_id,
        converted_opportunity_id,
        is_mql,
        is_sql,
        is_customer,
        first_response_at,
        response_minutes,
        response_minutes is not null as is_contacted,
        coalesce(response_minutes <= 60, false) as is_contacted_within_1h
    from leads
)

select * from final
