{#- subscriptions from Contract rows that are Activated or Expired; EndDate is
    the last active day, so `ended_at` (the first day no longer active) is the
    day after. No MRR in a standard Contract. -#}
{{ config(enabled=crm_enabled('salesforce', 'subscriptions')) }}

with

contracts as (
    select * from {{ source('salesforce', 'Contract') }}
    where Status in ('Activated', 'Expired') and StartDate is not null
),

final as (
    select
        Id as subscription_id,
        AccountId as account_id,
        cast(StartDate as date) as started_at,
        cast(cast(EndDate as date) + interval 1 day as date) as ended_at,
        cast(null as decimal(18, 4)) as mrr,
        CurrencyIsoCode as currency_code,
        _load_id
    from contracts
)

select * from final
