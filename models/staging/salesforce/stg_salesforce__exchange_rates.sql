{#- exchange_rates from DatedConversionRate when it has rows (CurrencyType is
    then not used at all), else CurrencyType's one rate per currency, valid for
    all dates (from 1900-01-01). Rates are units of the currency per unit of
    the corporate currency (`IsCorporate`). -#}
{{ config(enabled=crm_enabled('salesforce', 'exchange_rates')) }}

with

dated_rates as (
    select * from {{ source('salesforce', 'DatedConversionRate') }}
),

currencies as (
    select * from {{ source('salesforce', 'CurrencyType') }}
),

final as (
    select
        IsoCode as currency_code,
        cast(StartDate as date) as valid_from,
        cast(ConversionRate as decimal(28, 10)) as rate,
        _load_id
    from dated_rates
    union all
    select
        IsoCode as currency_code,
        date '1900-01-01' as valid_from,
        cast(ConversionRate as decimal(28, 10)) as rate,
        _load_id
    from currencies
    where (select count(*) from dated_rates) = 0 and ConversionRate is not null
)

select * from final
