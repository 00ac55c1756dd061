{#- The earliest activity on each deal (activities.opportunity_id), for the deal's
    first touch. Incremental: the activities loaded since the last build are
    folded into the built rows (earliest of both, counts added), which holds
    while activities are only added (`append_only`). -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='opportunity_id',
    append_only=crm_append_only('activities'),
) }}

with

activities as (
    select
        opportunity_id,
        occurred_at,
        _load_id
    from {{ ref('stg_crm__activities') }}
    where opportunity_id is not null
    {% if is_incremental() %}
        and _load_id > {{ last_seen_load_id() }}
    {% endif %}
),

new_aggregates as (
    select
        opportunity_id,
        min(occurred_at) as first_activity_at,
        count(*) as activities,
        max(_load_id) as _load_id
    from activities
    group by opportunity_id
),

{% if is_incremental() %}
aggregates as (
    select
        new_aggregates.opportunity_id,
        least(new_aggregates.first_activity_at, built.first_activity_at)
            as first_activity_at,
        new_aggregates.activities + coalesce(built.activities, 0) as activities,
        new_aggregates._load_id
    from new_aggregates
    left join {{ this }} as built
        on new_aggregates.opportunity_id = built.opportunity_id
),
{% else %}
aggregates as (
    select * from new_aggregates
),
{% endif %}

final as (
    select
        opportunity_id,
        first_activity_at,
        activities,
        _load_id
    from aggregates
)

select * from final
