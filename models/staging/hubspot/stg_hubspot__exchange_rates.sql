{#- HubSpot replications carry no dated exchange rates: none unless
    `exchange_rates.csv` is given beside the export. -#}
{{ config(enabled=crm_enabled('hubspot', 'exchange_rates')) }}

select
    cast(null as varchar) as currency_code,
    cast(null as date) as valid_from,
    cast(null as decimal(28, 10)) as rate,
    cast(null as bigint) as _load_id
where false
