{#- activities from Task and Event (SOURCES.md): tasks that are done
    (IsClosed), and events that are not an invitee's copy (IsChild) and start
    no later than the export's newest SystemModstamp over every object read (a
    meeting scheduled for next week has not happened). An event becomes an
    activity in the first load that holds a row stamped at or after its start:
    that load is its `_load_id`, so incremental models count it once.
    A view: computing the rows (a scan of Task and Event, joins on a few rows)
    costs less than writing every activity's 18-character ids to a table. -#}
{{ config(enabled=crm_enabled('salesforce', 'activities'), materialized='view') }}

{%- set objects = ['User', 'UserRole', 'Account', 'Opportunity', 'OpportunityHistory',
    'OpportunityStage', 'Lead', 'Task', 'Event', 'ForecastingQuota', 'Period', 'Contract',
    'DatedConversionRate', 'CurrencyType'] %}

with

tasks as (
    select * from {{ source('salesforce', 'Task') }}
),

events as (
    select * from {{ source('salesforce', 'Event') }}
),

stamps as (
    {%- for object in objects %}
    select SystemModstamp, _load_id from {{ source('salesforce', object) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

loads_stamped as (
    select _load_id, max(SystemModstamp) as newest_stamp
    from stamps
    group by _load_id
),

{#- how far the export reached by each load: the first load whose reach is at
    or after an event's start is the load that made it an activity #}
load_reach as (
    select min(_load_id) as _load_id, reach
    from (
        select
            _load_id,
            max(newest_stamp) over (order by _load_id rows unbounded preceding) as reach
        from loads_stamped
    )
    where reach is not null
    group by reach
),

{#- each load's reach as a range after the previous load's: an event falls in
    at most one, the first load whose reach is at or after its start #}
reach_ranges as (
    select _load_id, reach, lag(reach) over (order by reach) as previous_reach
    from load_reach
),

{#- the seed's spellings of each field, joined once (a row per spelling:
    the seed's test) instead of looked up per row #}
type_spellings as (
    select spelling, activity_type from {{ ref('activity_types') }} where field = 'type'
),

subtype_spellings as (
    select spelling, activity_type from {{ ref('activity_types') }} where field = 'task_subtype'
),

done_tasks as (
    select
        tasks.Id as activity_id,
        tasks.OwnerId as owner_id,
        coalesce(subtype_spellings.activity_type, type_spellings.activity_type, 'other')
            as activity_type,
        coalesce(tasks.CompletedDateTime, tasks.CreatedDate) as occurred_at,
        tasks.WhoId,
        tasks.WhatId,
        tasks.AccountId,
        tasks._load_id
    from tasks
    left join subtype_spellings on subtype_spellings.spelling = lower(tasks.TaskSubtype)
    left join type_spellings
        on type_spellings.spelling = {{ activity_type_spelling('tasks.Type') }}
    where coalesce(tasks.IsClosed, true)
),

held_events as (
    select
        events.Id as activity_id,
        events.OwnerId as owner_id,
        {#- a type the seed does not list (or lists as other) is a meeting #}
        coalesce(nullif(type_spellings.activity_type, 'other'), 'meeting') as activity_type,
        coalesce(events.ActivityDateTime, events.ActivityDate) as occurred_at,
        events.WhoId,
        events.WhatId,
        events.AccountId,
        events._load_id
    from events
    left join type_spellings
        on type_spellings.spelling = {{ activity_type_spelling('events.Type') }}
    where events.IsChild is distinct from true
),

events_seen as (
    select
        held_events.activity_id,
        held_events.owner_id,
        held_events.activity_type,
        held_events.occurred_at,
        held_events.WhoId,
        held_events.WhatId,
        held_events.AccountId,
        greatest(held_events._load_id, reach_ranges._load_id) as _load_id
    from held_events
    left join reach_ranges
        on held_events.occurred_at <= reach_ranges.reach
        and (
            reach_ranges.previous_reach is null
            or held_events.occurred_at > reach_ranges.previous_reach
        )
    {#- an export without any SystemModstamp column keeps every event #}
    where reach_ranges.reach is not null
        or (held_events.occurred_at is not null and (select count(*) from load_reach) = 0)
),

activities as (
    select * from done_tasks
    union all
    select * from events_seen
),

final as (
    select
        activity_id,
        coalesce(owner_id, 'unowned') as owner_id,
        activity_type,
        occurred_at,
        case when WhoId like '00Q%' then WhoId end as lead_id,
        case when WhatId like '006%' then WhatId end as opportunity_id,
        AccountId as account_id,
        _load_id
    from activities
)

select * from final
