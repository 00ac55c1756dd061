{#- HubSpot has no standard quota object: no quotas unless `quotas.csv` is
    given beside the export (then this model is not used). -#}
{{ config(enabled=crm_enabled('hubspot', 'quotas')) }}

select
    cast(null as varchar) as user_id,
    cast(null as date) as month,
    cast(null as decimal(18, 4)) as quota_amount,
    cast(null as varchar) as currency_code,
    cast(null as bigint) as _load_id
where false
