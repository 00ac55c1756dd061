{#- HubSpot has no standard subscription object: none unless
    `subscriptions.csv` is given beside the export. -#}
{{ config(enabled=crm_enabled('hubspot', 'subscriptions')) }}

select
    cast(null as varchar) as subscription_id,
    cast(null as varchar) as account_id,
    cast(null as date) as started_at,
    cast(null as date) as ended_at,
    cast(null as decimal(18, 4)) as mrr,
    cast(null as varchar) as currency_code,
    cast(null as bigint) as _load_id
where false
