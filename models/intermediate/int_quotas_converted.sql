{#- Quotas in the reporting currency (KPI_SPEC section 5): a quota in another
    currency is divided by the rate in effect on its month. Without a reporting
    currency, the quotas as exported. -#}
{%- set currency = reporting_currency() -%}

{{ config(materialized='view') }}

with

quotas as (
    select
        user_id,
        quota_month,
        quota_amount,
        currency_code,
        _load_id
    from {{ ref('stg_crm__quotas') }}
),

{# nothing is converted before every currency is known to convert #}
checked_currencies as (
    select currency_code from {{ ref('int_currencies_checked') }}
),

{% if currency %}
exchange_rates as (
    select
        currency_code,
        effective_from,
        effective_to,
        rate,
        _load_id
    from {{ ref('int_exchange_rates_ranged') }}
),
{% endif %}

final as (
    select
        quotas.user_id,
        quotas.quota_month,
        {% if currency %}
        {{ money_in_reporting_currency(
            'quotas.quota_amount', 'quotas.currency_code', 'exchange_rates.rate'
        ) }} as quota_amount,
        greatest(quotas._load_id, exchange_rates._load_id) as _load_id
        {% else %}
        quotas.quota_amount,
        quotas._load_id
        {% endif %}
    from quotas
    {% if currency %}
    left join exchange_rates
        on {{ rate_in_effect('exchange_rates', 'quotas.currency_code', 'quotas.quota_month') }}
    {% endif %}
)

select * from final
