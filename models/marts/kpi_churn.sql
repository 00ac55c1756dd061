{#- KPI 8, churn: customers at the start and end of each month, company rows
    only. At start = customer on the last day of the previous month, at end =
    customer on the month's last day; an account is a customer on a day when one
    of its subscriptions is active that day. -#}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

customer_changes as (
    select
        month,
        change_type,
        customers_change
    from {{ ref('int_customers_changed') }}
),

monthly_changes as (
    select
        month,
        {{ count_where("change_type = 'new'") }} as new_customers,
        {{ count_where("change_type = 'churned'") }} as churned_customers,
        {{ sum_or_zero('customers_change') }} as customers_change
    from customer_changes
    group by month
),

customer_counts as (
    {# customers at a month's end: every change up to that month, including the
       changes before the range #}
    select
        months.month,
        {{ sum_or_zero('monthly_changes.customers_change') }} as customers_at_end,
        {{
            sum_or_zero(
                'monthly_changes.new_customers',
                condition='monthly_changes.month = months.month'
            )
        }} as new_customers,
        {{
            sum_or_zero(
                'monthly_changes.churned_customers',
                condition='monthly_changes.month = months.month'
            )
        }} as churned_customers
    from months
    left join monthly_changes
        on monthly_changes.month <= months.month
    group by months.month
),

customer_flows as (
    {# a month's at_start is the previous month's at_end #}
    select
        month,
        customers_at_end - new_customers + churned_customers as customers_at_start,
        customers_at_end,
        new_customers,
        churned_customers
    from customer_counts
),

final as (
    select
        month,
        'company' as level,
        cast(null as varchar) as team_id,
        cast(null as varchar) as rep_id,
        customers_at_start,
        customers_at_end,
        new_customers,
        churned_customers,
        {{ safe_divide('churned_customers', 'customers_at_start') }} as churn_rate,
        {{
            safe_divide('customers_at_start - customers_at_end', 'customers_at_start')
        }} as net_churn_rate
    from customer_flows
)

select * from final
{#- the CRM has no subscriptions (HubSpot without subscriptions.csv): no rows, not wrong ones #}
{% if crm_lacks('subscriptions') %}
where false
{% endif %}
