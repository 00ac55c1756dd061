{#- Activities per activity month and owner, counted by normalized type: the
    per-row work over the activities. Incremental: a build adds the counts of
    the activities loaded since the last build to the counts it already has
    (delete+insert of the touched month/owner rows). That holds while
    activities are only ever added, which `append_only` makes the runner check:
    an activity changed or removed in the export rebuilds this model in full. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['activity_month', 'owner_id'],
    append_only=crm_append_only('activities'),
) }}

with

activities as (
    select
        owner_id,
        activity_type,
        occurred_at,
        _load_id
    from {{ ref('stg_crm__activities') }}
    {% if is_incremental() %}
    where _load_id > {{ last_seen_load_id() }}
    {% endif %}
),

new_counts as (
    select
        {{ to_reporting_month('occurred_at') }} as activity_month,
        owner_id,
        {{ count_where("activity_type = 'call'") }} as calls,
        {{ count_where("activity_type = 'email'") }} as emails,
        {{ count_where("activity_type = 'meeting'") }} as meetings,
        {{ count_where("activity_type = 'demo'") }} as demos,
        {{ count_where("activity_type = 'other'") }} as other_activities,
        count(*) as total_activities,
        max(_load_id) as _load_id
    from activities
    group by
        activity_month,
        owner_id
),

{% if is_incremental() %}
counts as (
    {# the counts already built, plus the new ones #}
    select
        new_counts.activity_month,
        new_counts.owner_id,
        new_counts.calls + coalesce(built.calls, 0) as calls,
        new_counts.emails + coalesce(built.emails, 0) as emails,
        new_counts.meetings + coalesce(built.meetings, 0) as meetings,
        new_counts.demos + coalesce(built.demos, 0) as demos,
        new_counts.other_activities + coalesce(built.other_activities, 0)
            as other_activities,
        new_counts.total_activities + coalesce(built.total_activities, 0)
            as total_activities,
        new_counts._load_id
    from new_counts
    left join {{ this }} as built
        on new_counts.activity_month = built.activity_month
        and new_counts.owner_id = built.owner_id
),
{% else %}
counts as (
    select * from new_counts
),
{% endif %}

final as (
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
    from counts
)

select * from final
