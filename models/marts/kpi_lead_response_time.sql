{#- KPI 9, lead response time: minutes from a lead's creation to the first
    activity on it, by lead cohort (created month) and lead owner. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    valid_keys='int_months_reported',
    append_only=crm_append_only('leads'),
) }}

with

all_months as (
    select month from {{ ref('int_months_reported') }}
),

users as (
    select _load_id from {{ ref('stg_crm__users') }}
),

{# `not materialized`: read twice in an incremental run (the months to redo,
   then the leads of those months); DuckDB would otherwise copy all of
   int_leads_enriched first #}
leads_all as not materialized (
    select * from {{ ref('int_leads_enriched') }}
),

{# incremental by month: a lead's cohort month never moves (leads are
   append_only here), so the months to redo are those of the leads whose
   response time may have changed: the lead itself or its activities (every
   column read below comes from the lead, its activities and its owner's
   team, and a changed user redoes every month). Not `leads_all._load_id`:
   that also moves when a lead's converted deal changes, which touches leads
   of every month and changes only is_customer (at 1M deals, a 1% append
   redid 15 months instead of 1). `test_incremental_identity.py` checks the
   column lineage this relies on. #}
response_inputs as not materialized (
    select lead_id, _load_id from {{ ref('stg_crm__leads') }}
    union all
    select lead_id, _load_id from {{ ref('int_lead_activities_aggregated') }}
),

leads_responses_changed as not materialized (
    select
        leads_all.created_month,
        response_inputs._load_id
    from response_inputs
    inner join leads_all
        on response_inputs.lead_id = leads_all.lead_id
),

{{ months_to_build('leads_responses_changed', 'created_month') }},

active_reps as (
    select
        month,
        team_id,
        rep_id
    from {{ ref('int_rep_months_spined') }}
),

leads as (
    select
        created_month as month,
        owner_team_id as team_id,
        owner_id as rep_id,
        lead_id,
        response_microseconds,
        response_minutes
    from leads_all
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['leads', [
            'month', 'team_id', 'rep_id', 'lead_id', 'response_microseconds',
            'response_minutes',
        ]]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        count(rep_rows.lead_id) as leads,
        count(rep_rows.response_minutes) as contacted_leads,
        {# summed exactly in microseconds, then divided once (order-independent) #}
        {{ safe_divide(sum_or_zero('rep_rows.response_microseconds', 'decimal(38, 0)'),
            '60000000.0') }} as total_response_minutes,
        median(rep_rows.response_minutes) as median_response_minutes,
        {{ count_where('rep_rows.response_minutes <= 60') }} as contacted_within_1h
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        leads,
        contacted_leads,
        total_response_minutes,
        {{ safe_divide('total_response_minutes', 'contacted_leads') }}
            as avg_response_minutes,
        median_response_minutes,
        contacted_within_1h,
        {{ percent_of('contacted_within_1h', 'leads') }} as pct_contacted_within_1h
    from rolled_up
)

select * from final
