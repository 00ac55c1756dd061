{#- Activities per activity month and owner, counted by normalized type: the
    per-row work over the activities, kept apart so that it can become
    incremental. -#}

with

activities as (
    select
        owner_id,
        activity_type,
        occurred_at
    from {{ ref('stg_crm__activities') }}
),

users as (
    select
        user_id,
        team_id
    from {{ ref('stg_crm__users') }}
),

monthly_counts as (
    select
        {{ month_of('occurred_at') }} as activity_month,
        owner_id,
        {{ count_where("activity_type = 'call'") }} as calls,
        {{ count_where("activity_type = 'email'") }} as emails,
        {{ count_where("activity_type = 'meeting'") }} as meetings,
        {{ count_where("activity_type = 'demo'") }} as demos,
        {{ count_where("activity_type = 'other'") }} as other_activities,
        count(*) as total_activities
    from activities
    group by
        activity_month,
        owner_id
),

final as (
    select
        monthly_counts.activity_month,
        monthly_counts.owner_id,
        users.team_id as owner_team_id,
        monthly_counts.calls,
        monthly_counts.emails,
        monthly_counts.meetings,
        monthly_counts.demos,
        monthly_counts.other_activities,
        monthly_counts.total_activities
    from monthly_counts
    left join users
        on monthly_counts.owner_id = users.user_id
)

select * from final
