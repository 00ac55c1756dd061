{#- Every currency the export's money values are in (KPI_SPEC section 5),
    checked before anything is converted or summed: the build fails, naming the
    currency and its first row (by table, then key), when a row carries a
    currency code while no reporting currency is set, or is in a currency other
    than the reporting one that has no rate. The models that read money depend
    on this one, so they keep their previous tables when it fails. -#}
{%- set currency = reporting_currency() -%}

with

opportunities as (
    select
        'opportunities' as table_name,
        'opportunity_id ' || opportunity_id as row_name,
        currency_code
    from {{ ref('stg_crm__opportunities') }}
    where currency_code is not null
),

quotas as (
    select
        'quotas' as table_name,
        'user_id ' || user_id || ', month ' || strftime(quota_month, '%Y-%m-%d') as row_name,
        currency_code
    from {{ ref('stg_crm__quotas') }}
    where currency_code is not null
),

subscriptions as (
    select
        'subscriptions' as table_name,
        'subscription_id ' || subscription_id as row_name,
        currency_code
    from {{ ref('stg_crm__subscriptions') }}
    where currency_code is not null
),

exchange_rates as (
    select distinct currency_code from {{ ref('int_exchange_rates_ranged') }}
),

coded_rows as (
    select * from opportunities
    union all
    select * from quotas
    union all
    select * from subscriptions
),

unconvertible_rows as (
    select
        table_name,
        row_name,
        currency_code
    from coded_rows
    {% if currency %}
    where
        currency_code <> {{ sql_literal(currency) }}
        and currency_code not in (select exchange_rates.currency_code from exchange_rates)
    {% endif %}
),

first_unconvertible_row as (
    select
        table_name,
        row_name,
        currency_code
    from unconvertible_rows
    order by table_name, row_name
    limit 1
),

failure as (
    {# one row, whose failure is NULL when every row converts; error() stops
       the build otherwise #}
    select
        max(
            error(
                {% if currency %}
                currency_code || ' has no rate in exchange_rates to convert it to the '
                || 'reporting currency {{ currency }} (first row: ' || table_name || ' '
                || row_name || '). Add its rates to the exchange_rates file (rate = units '
                || 'of ' || currency_code || ' per 1 {{ currency }}).'
                {% else %}
                'the export has money in currency ' || currency_code || ' (first row: '
                || table_name || ' ' || row_name || ') but no reporting currency is set, '
                || 'so nothing can be summed in one currency. Set reporting_currency in '
                || '[tool.kpi] (for example reporting_currency = "USD") and give the rates '
                || 'of every other currency in an exchange_rates file.'
                {% endif %}
            )
        ) as failure
    from first_unconvertible_row
),

currencies as (
    select
        currency_code,
        count(*) filter (where table_name = 'opportunities') as opportunities,
        count(*) filter (where table_name = 'quotas') as quotas,
        count(*) filter (where table_name = 'subscriptions') as subscriptions
    from coded_rows
    group by currency_code
),

final as (
    select
        currencies.currency_code,
        currencies.opportunities,
        currencies.quotas,
        currencies.subscriptions
    from currencies
    cross join failure
    where failure.failure is null
)

select * from final
