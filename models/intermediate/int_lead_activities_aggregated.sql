{#- One aggregate over the activities that name a lead: the earliest of them (a
    deal's first touch goes through its lead_id, whenever the activity happened),
    and the earliest at or after the lead's created_at (the lead's first response;
    NULL when the lead is unknown).

    Incremental: the leads touched since the last build (a new activity names
    them, or the lead itself is new or changed) are recomputed from all their
    activities, so an old activity of a lead that arrives later still counts.
    Activities are `append_only`: one that moved to another lead rebuilds all. -#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_id',
    append_only=crm_append_only('activities'),
) }}

{# `not materialized`: the import CTEs are read several times in an incremental
   run; left inline, each read gets its own filters pushed into the scan #}

with

{% if is_incremental() %}
touched_leads as (
    select lead_id from {{ ref('stg_crm__activities') }}
    where lead_id is not null and _load_id > {{ last_seen_load_id() }}
    union
    select lead_id from {{ ref('stg_crm__leads') }}
    where _load_id > {{ last_seen_load_id() }}
),
{% endif %}

activities as not materialized (
    select
        lead_id,
        occurred_at,
        _load_id
    from {{ ref('stg_crm__activities') }}
    where lead_id is not null
    {% if is_incremental() %}
        and lead_id in (select touched_leads.lead_id from touched_leads)
    {% endif %}
),

leads as not materialized (
    select
        lead_id,
        created_at,
        _load_id
    from {{ ref('stg_crm__leads') }}
),

final as (
    select
        activities.lead_id,
        min(activities.occurred_at) as first_activity_at,
        min(activities.occurred_at)
            filter (where activities.occurred_at >= leads.created_at)
            as first_response_at,
        count(*) as activities,
        greatest(max(activities._load_id), max(leads._load_id)) as _load_id
    from activities
    left join leads
        on activities.lead_id = leads.lead_id
    group by activities.lead_id
)

select * from final
