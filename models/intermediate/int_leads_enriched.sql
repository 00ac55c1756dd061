{#- One row per lead with its owner's team, its cohort month, whether it became
    a customer (its converted_opportunity_id is a won deal) and its first
    response (KPI_SPEC section 3).

    Incremental, by lead: a build recomputes the leads touched since the last
    one (the lead, its first response, the deal it converted into or its
    owner's team changed) and replaces their rows. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_id',
) }}

{# `not materialized`: the import CTEs are read several times in an incremental
   run; left inline, each read gets its own filters pushed into the scan #}

with

leads as not materialized (
    select * from {{ ref('stg_crm__leads') }}
),

users as not materialized (
    select
        user_id,
        team_id,
        _load_id
    from {{ ref('stg_crm__users') }}
),

opportunities as not materialized (
    select
        opportunity_id,
        is_won,
        _load_id
    from {{ ref('stg_crm__opportunities') }}
),

lead_activities as not materialized (
    select
        lead_id,
        first_response_at,
        _load_id
    from {{ ref('int_lead_activities_aggregated') }}
),

{% if is_incremental() %}
touched_leads as (
    select lead_id from leads
    where _load_id > {{ last_seen_load_id() }}
    union
    select lead_id from lead_activities
    where _load_id > {{ last_seen_load_id() }}
    union
    select leads.lead_id
    from leads
    inner join opportunities
        on leads.converted_opportunity_id = opportunities.opportunity_id
    where opportunities._load_id > {{ last_seen_load_id() }}
    union
    select leads.lead_id
    from leads
    inner join users
        on leads.owner_id = users.user_id
    where users._load_id > {{ last_seen_load_id() }}
),
{% endif %}

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
        coalesce(opportunities.is_won, false) as is_customer,
        lead_activities.first_response_at,
        greatest(
            leads._load_id, users._load_id, opportunities._load_id, lead_activities._load_id
        ) as _load_id
    from leads
    left join users
        on leads.owner_id = users.user_id
    left join opportunities
        on leads.converted_opportunity_id = opportunities.opportunity_id
    left join lead_activities
        on leads.lead_id = lead_activities.lead_id
    {% if is_incremental() %}
    where leads.lead_id in (select touched_leads.lead_id from touched_leads)
    {% endif %}
),

final as (
    select
        lead_id,
        owner_id,
        owner_team_id,
        lead_source,
        lead_status,
        created_at,
        {{ to_reporting_month('created_at') }} as created_month,
        mql_at,
        sql_at,
        converted_at,
        converted_account_id,
        converted_opportunity_id,
        mql_at is not null as is_mql,
        sql_at is not null as is_sql,
        is_customer,
        first_response_at,
        {{ microseconds_between('created_at', 'first_response_at') }} as response_microseconds,
        {{ safe_divide(microseconds_between('created_at', 'first_response_at'), '60000000.0') }}
            as response_minutes,
        _load_id
    from joined
)

select * from final
