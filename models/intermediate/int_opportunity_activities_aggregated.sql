{#- The earliest activity on each deal (activities.opportunity_id), for the deal's
    first touch. -#}

with

activities as (
    select
        opportunity_id,
        occurred_at
    from {{ ref('stg_crm__activities') }}
    where opportunity_id is not null
),

final as (
    select
        opportunity_id,
        min(occurred_at) as first_activity_at,
        count(*) as activities
    from activities
    group by opportunity_id
)

select * from final
