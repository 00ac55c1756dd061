{#- KPI 2, lead conversion: the funnel of each lead cohort (created month), by
    lead owner. A lead is a customer when its converted_opportunity_id is a won
    deal, whenever that deal was won. -#}

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
   append_only here), so the months of the leads touched since the last build
   are the ones to redo #}
{{ months_to_build('leads_all', 'created_month') }},

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
        is_mql,
        is_sql,
        is_customer
    from leads_all
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['leads', ['month', 'team_id', 'rep_id', 'lead_id', 'is_mql', 'is_sql', 'is_customer']]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        count(rep_rows.lead_id) as leads,
        {{ count_where('rep_rows.is_mql') }} as mqls,
        {{ count_where('rep_rows.is_sql') }} as sqls,
        {{ count_where('rep_rows.is_customer') }} as customers
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        leads,
        mqls,
        sqls,
        customers,
        {{ percent_of('customers', 'leads') }} as conversion_rate_pct,
        {{ safe_divide('sqls', 'mqls') }} as mql_to_sql_rate,
        {{ safe_divide('customers', 'sqls') }} as sql_to_customer_rate
    from rolled_up
)

select * from final
