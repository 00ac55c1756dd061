{#- quotas from ForecastingQuota rows with QuotaOwnerId and StartDate. A quota
    whose PeriodId is a Period of Type Quarter is split evenly over its three
    months in DECIMAL: a third rounded down to 4 decimals on the first two
    months, the rest on the third, so the months add up to the quarter exactly.
    Other quotas are monthly, on the month of StartDate. Quotas of one user and
    month add up (docs/crm_sources.md) when they are in one currency; quotas of
    one user and month in two currencies cannot be added before conversion, so
    the build fails naming the user, the month and two of the currencies. -#}
{{ config(enabled=crm_enabled('salesforce', 'quotas')) }}

with

quotas as (
    select * from {{ source('salesforce', 'ForecastingQuota') }}
    where QuotaOwnerId is not null and StartDate is not null
),

periods as (
    select Id, Type, _load_id from {{ source('salesforce', 'Period') }}
),

quota_months as (
    select
        quotas.QuotaOwnerId as user_id,
        cast(date_trunc('month', quotas.StartDate) as date) as first_month,
        coalesce(quotas.QuotaAmount, 0) as quota_amount,
        quotas.CurrencyIsoCode as currency_code,
        periods.Type = 'Quarter' and periods.Type is not null as is_quarter,
        greatest(quotas._load_id, periods._load_id) as _load_id
    from quotas
    left join periods on periods.Id = quotas.PeriodId
),

split as (
    select
        user_id,
        cast(first_month + to_months(month_offset) as date) as month,
        case
            when not is_quarter then quota_amount
            when month_offset < 2
                then cast({{ truncate_double("quota_amount / 3", 4) }} as decimal(18, 4))
            else quota_amount
                - 2 * cast({{ truncate_double("quota_amount / 3", 4) }} as decimal(18, 4))
        end as quota_amount,
        currency_code,
        _load_id
    from quota_months
    cross join (values (0), (1), (2)) as offsets(month_offset)
    where is_quarter or month_offset = 0
),

summed as (
    select
        user_id,
        month,
        cast(sum(quota_amount) as decimal(18, 4)) as quota_amount,
        min(coalesce(currency_code, '')) as currency_code,
        max(coalesce(currency_code, '')) as other_currency_code,
        max(_load_id) as _load_id
    from split
    group by user_id, month
),

first_mixed_currencies as (
    select
        user_id,
        month,
        currency_code,
        other_currency_code
    from summed
    where currency_code <> other_currency_code
    order by user_id, month
    limit 1
),

failure as (
    {# one row, whose failure is NULL unless some user's quotas of one month
       are in two currencies; error() stops the build then #}
    select
        max(
            error(
                'ForecastingQuota: the quotas of user ' || user_id || ' for '
                || strftime(month, '%Y-%m') || ' are in more than one currency ('
                || coalesce(nullif(currency_code, ''), 'none given') || ' and '
                || other_currency_code || '), so they cannot be added up. Give each '
                || 'user''s quotas of one month in one currency, or give the quotas '
                || 'in a quotas.csv beside the export.'
            )
        ) as failure
    from first_mixed_currencies
),

final as (
    select
        summed.user_id,
        summed.month,
        summed.quota_amount,
        nullif(summed.currency_code, '') as currency_code,
        summed._load_id
    from summed
    cross join failure
    where failure.failure is null
)

select * from final
