{#- KPI 10, sales effort: activities by activity month and the user who did
    them, by normalized type. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    valid_keys='int_months_reported',
) }}

with

all_months as (
    select month from {{ ref('int_months_reported') }}
),

active_reps as (
    select
        month,
        team_id,
        rep_id
    from {{ ref('int_rep_months_spined') }}
),

users as (
    select
        user_id,
        team_id,
        _load_id
    from {{ ref('stg_crm__users') }}
),

activities as (
    select
        activity_month,
        owner_id,
        calls,
        emails,
        meetings,
        demos,
        other_activities,
        total_activities,
        _load_id
    from {{ ref('int_activities_aggregated') }}
),

{# incremental by month: the months whose counts took new activities #}
{{ months_to_build('activities', 'activity_month') }},

owner_activities as (
    {# a rep's team is users.team_id today, for every month #}
    select
        activities.activity_month as month,
        users.team_id,
        activities.owner_id as rep_id,
        activities.calls,
        activities.emails,
        activities.meetings,
        activities.demos,
        activities.other_activities,
        activities.total_activities
    from activities
    left join users
        on activities.owner_id = users.user_id
),

rep_rows as (
    {{ union_all_by_name([
        ['active_reps', ['month', 'team_id', 'rep_id']],
        ['owner_activities', [
            'month', 'team_id', 'rep_id', 'calls', 'emails', 'meetings', 'demos',
            'other_activities', 'total_activities',
        ]]
    ]) }}
),

rolled_up as (
    {% call rollup_by_level('rep_rows') %}
        {{ sum_or_zero('rep_rows.calls') }} as calls,
        {{ sum_or_zero('rep_rows.emails') }} as emails,
        {{ sum_or_zero('rep_rows.meetings') }} as meetings,
        {{ sum_or_zero('rep_rows.demos') }} as demos,
        {{ sum_or_zero('rep_rows.other_activities') }} as other_activities,
        {{ sum_or_zero('rep_rows.total_activities') }} as total_activities
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        calls,
        emails,
        meetings,
        demos,
        other_activities,
        total_activities
    from rolled_up
)

select * from final
