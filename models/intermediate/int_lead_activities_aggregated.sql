{#- One aggregate over the activities that name a lead: the earliest of them (a
    deal's first touch goes through its lead_id, whenever the activity happened),
    and the earliest at or after the lead's created_at (the lead's first response;
    NULL when the lead is unknown). -#}

with

activities as (
    select
        lead_id,
        occurred_at
    from {{ ref('stg_crm__activities') }}
    where lead_id is not null
),

leads as (
    select
        lead_id,
        created_at
    from {{ ref('stg_crm__leads') }}
),

final as (
    select
        activities.lead_id,
        min(activities.occurred_at) as first_activity_at,
        min(activities.occurred_at)
            filter (where activities.occurred_at >= leads.created_at)
            as first_response_at,
        count(*) as activities
    from activities
    left join leads
        on activities.lead_id = leads.lead_id
    group by activities.lead_id
)

select * from final
