{#- One row per deal with its owner's team, its current stage's order, its close
    month and, for won deals, the days from first touch to close (KPI_SPEC
    section 3).

    The amount is in the reporting currency (KPI_SPEC section 5): a won or lost
    deal in another currency is divided by the rate in effect on its
    close_date, an open deal by its currency's latest rate.

    Incremental, by deal: a build recomputes the deals touched since the last
    one (the deal, its lead, its first activities, its owner's team, any
    stage, or, for deals in another currency, any rate changed) and replaces
    their rows. -#}
{%- set currency = reporting_currency() -%}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='opportunity_id',
) }}

{# `not materialized`: the import CTEs are read several times in an incremental
   run; left inline, each read gets its own filters pushed into the scan #}

with

opportunities as not materialized (
    select * from {{ ref('stg_crm__opportunities') }}
),

users as not materialized (
    select
        user_id,
        team_id,
        _load_id
    from {{ ref('stg_crm__users') }}
),

pipeline_stages as not materialized (
    select
        stage_name,
        stage_order,
        _load_id
    from {{ ref('stg_crm__pipeline_stages') }}
),

leads as not materialized (
    select
        lead_id,
        created_at,
        _load_id
    from {{ ref('stg_crm__leads') }}
),

lead_activities as not materialized (
    select
        lead_id,
        first_activity_at,
        _load_id
    from {{ ref('int_lead_activities_aggregated') }}
),

opportunity_activities as not materialized (
    select
        opportunity_id,
        first_activity_at,
        _load_id
    from {{ ref('int_opportunity_activities_aggregated') }}
),

{# nothing is converted before every currency is known to convert #}
checked_currencies as (
    select currency_code from {{ ref('int_currencies_checked') }}
),

{% if currency %}
exchange_rates as not materialized (
    select
        currency_code,
        effective_from,
        effective_to,
        rate,
        _load_id
    from {{ ref('int_exchange_rates_ranged') }}
),
{% endif %}

{% if is_incremental() %}
touched_deals as (
    select opportunity_id from opportunities
    where _load_id > {{ last_seen_load_id() }}
    union
    select opportunity_id from opportunity_activities
    where _load_id > {{ last_seen_load_id() }}
    union
    select opportunities.opportunity_id
    from opportunities
    inner join leads
        on opportunities.lead_id = leads.lead_id
    where leads._load_id > {{ last_seen_load_id() }}
    union
    select opportunities.opportunity_id
    from opportunities
    inner join lead_activities
        on opportunities.lead_id = lead_activities.lead_id
    where lead_activities._load_id > {{ last_seen_load_id() }}
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
    {% if currency %}
    union
    select opportunity_id from opportunities
    where
        currency_code is not null
        and exists (
            select 1 from exchange_rates where _load_id > {{ last_seen_load_id() }}
        )
    {% endif %}
),
{% endif %}

joined as (
    select
        opportunities.opportunity_id,
        opportunities.opportunity_name,
        opportunities.opportunity_type,
        opportunities.account_id,
        opportunities.lead_id,
        opportunities.owner_id,
        users.team_id as owner_team_id,
        opportunities.stage_name,
        pipeline_stages.stage_order,
        {% if currency %}
        {{ money_in_reporting_currency(
            'opportunities.amount', 'opportunities.currency_code', 'exchange_rates.rate'
        ) }} as amount,
        {% else %}
        opportunities.amount,
        {% endif %}
        opportunities.is_closed,
        opportunities.is_won,
        opportunities.is_lost,
        opportunities.created_at,
        opportunities.close_date,
        {# first touch: the earliest of the deal's created_at, its lead's
           created_at, and every activity on the deal or on its lead; least()
           skips NULLs #}
        least(
            opportunities.created_at,
            leads.created_at,
            lead_activities.first_activity_at,
            opportunity_activities.first_activity_at
        ) as first_touch_at,
        greatest(
            opportunities._load_id,
            users._load_id,
            pipeline_stages._load_id,
            leads._load_id,
            lead_activities._load_id,
            opportunity_activities._load_id{{ ',' if currency }}
            {% if currency %}
            exchange_rates._load_id
            {% endif %}
        ) as _load_id
    from opportunities
    left join users
        on opportunities.owner_id = users.user_id
    left join pipeline_stages
        on opportunities.stage_name = pipeline_stages.stage_name
    left join leads
        on opportunities.lead_id = leads.lead_id
    left join lead_activities
        on opportunities.lead_id = lead_activities.lead_id
    left join opportunity_activities
        on opportunities.opportunity_id = opportunity_activities.opportunity_id
    {% if currency %}
    {# open deals (no close_date) take the latest rate #}
    left join exchange_rates
        on {{ rate_in_effect(
            'exchange_rates',
            'opportunities.currency_code',
            "coalesce(opportunities.close_date, date '9999-12-30')",
        ) }}
    {% endif %}
    {% if is_incremental() %}
    where opportunities.opportunity_id in (
        select touched_deals.opportunity_id from touched_deals
    )
    {% endif %}
),

final as (
    select
        opportunity_id,
        opportunity_name,
        opportunity_type,
        account_id,
        lead_id,
        owner_id,
        owner_team_id,
        stage_name,
        stage_order,
        amount,
        is_closed,
        is_won,
        is_lost,
        created_at,
        {{ to_reporting_month('created_at') }} as created_month,
        close_date,
        {{ month_of('close_date') }} as close_month,
        first_touch_at,
        {{ to_reporting_date('first_touch_at') }} as first_touch_date,
        case
            when is_won
                then date_diff('day', {{ to_reporting_date('first_touch_at') }}, close_date)
        end as days_to_close,
        _load_id
    from joined
)

select * from final
