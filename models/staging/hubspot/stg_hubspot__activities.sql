{#- activities from engagement_call, engagement_email and engagement_meeting
    (the type from the table). Owner: property_hubspot_owner_id, else the
    engagement's owner_id, else `unowned`; occurred at property_hs_timestamp,
    else a meeting's start time, else property_hs_createdate; the first
    associated contact (lead) and deal (opportunity) by id. -#}
{{ config(enabled=crm_enabled('hubspot', 'activities')) }}

with

calls as (
    select
        engagement_id, property_hubspot_owner_id, 'call' as activity_type,
        coalesce(property_hs_timestamp, property_hs_createdate) as occurred_at, _load_id
    from {{ source('hubspot', 'engagement_call') }}
),

emails as (
    select
        engagement_id, property_hubspot_owner_id, 'email' as activity_type,
        coalesce(property_hs_timestamp, property_hs_createdate) as occurred_at, _load_id
    from {{ source('hubspot', 'engagement_email') }}
),

meetings as (
    select
        engagement_id, property_hubspot_owner_id, 'meeting' as activity_type,
        coalesce(
            property_hs_timestamp, property_hs_meeting_start_time, property_hs_createdate
        ) as occurred_at,
        _load_id
    from {{ source('hubspot', 'engagement_meeting') }}
),

engagements as (
    select id, owner_id, _load_id from {{ source('hubspot', 'engagement') }}
),

first_contacts as (
    select engagement_id, min(contact_id) as contact_id, max(_load_id) as _load_id
    from {{ source('hubspot', 'engagement_contact') }}
    group by engagement_id
),

first_deals as (
    select engagement_id, min(deal_id) as deal_id, max(_load_id) as _load_id
    from {{ source('hubspot', 'engagement_deal') }}
    group by engagement_id
),

typed as (
    select * from calls
    union all
    select * from emails
    union all
    select * from meetings
),

final as (
    select
        typed.engagement_id as activity_id,
        coalesce(typed.property_hubspot_owner_id, engagements.owner_id, 'unowned') as owner_id,
        typed.activity_type,
        typed.occurred_at,
        first_contacts.contact_id as lead_id,
        first_deals.deal_id as opportunity_id,
        cast(null as varchar) as account_id,
        greatest(
            typed._load_id, engagements._load_id, first_contacts._load_id, first_deals._load_id
        ) as _load_id
    from typed
    left join engagements on engagements.id = typed.engagement_id
    left join first_contacts on first_contacts.engagement_id = typed.engagement_id
    left join first_deals on first_deals.engagement_id = typed.engagement_id
    where typed.occurred_at is not null
)

select * from final
