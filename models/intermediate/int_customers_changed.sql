{#- One row per account and month in which the account's customer status at month
    end changes: `new` when it became a customer, `churned` when it stopped
    (KPI_SPEC section 3). An account is a customer on its month's last day when
    one of its subscriptions has started_at in or before that month and ended_at
    NULL or in a later month, so each subscription adds 1 from its start month
    and takes it back in its end month; a running sum per account gives how many
    subscriptions are active at each month end. -#}

with

subscriptions as (
    select
        account_id,
        start_date,
        end_date
    from {{ ref('stg_crm__subscriptions') }}
    {# a subscription that ends on or before its first day is never active #}
    where end_date is null or end_date > start_date
),

changes as (
    select
        account_id,
        {{ month_of('start_date') }} as month,
        1 as subscriptions_change
    from subscriptions

    union all

    select
        account_id,
        {{ month_of('end_date') }} as month,
        -1 as subscriptions_change
    from subscriptions
    where end_date is not null
),

monthly_changes as (
    select
        account_id,
        month,
        sum(subscriptions_change) as subscriptions_change
    from changes
    group by
        account_id,
        month
),

running_counts as (
    select
        account_id,
        month,
        sum(subscriptions_change) over (
            partition by account_id
            order by month
            rows between unbounded preceding and current row
        ) as active_at_end,
        subscriptions_change
    from monthly_changes
),

statuses as (
    select
        account_id,
        month,
        active_at_end - subscriptions_change > 0 as was_customer_at_start,
        active_at_end > 0 as is_customer_at_end
    from running_counts
),

final as (
    select
        account_id,
        month,
        case when is_customer_at_end then 'new' else 'churned' end as change_type,
        case when is_customer_at_end then 1 else -1 end as customers_change
    from statuses
    where was_customer_at_start <> is_customer_at_end
)

select * from final
