{#- leads from Lead (SOURCES.md): `converted` when IsConverted, else Status
    lower-cased; converted at midnight UTC of ConvertedDate; no owner ->
    `unowned`. mql_at / sql_at are the Lead datetime fields that
    `[tool.kpi.salesforce] lead_mql_at_field` / `lead_sql_at_field` name (custom
    fields such as `MQL_Date__c`), else NULL: Salesforce has no standard field. -#}
{{ config(enabled=crm_enabled('salesforce', 'leads')) }}

{%- set fields = var('salesforce_lead_fields', {}) %}

with

leads as (
    select * from {{ source('salesforce', 'Lead') }}
),

final as (
    select
        Id as lead_id,
        CreatedDate as created_at,
        coalesce(OwnerId, 'unowned') as owner_id,
        LeadSource as lead_source,
        case when IsConverted then 'converted' else lower(Status) end as status,
        {%- for column in ['mql_at', 'sql_at'] %}
        {% if fields.get(column) -%}
        "{{ fields[column] }}"
        {%- else -%}
        cast(null as timestamp)
        {%- endif %} as {{ column }},
        {%- endfor %}
        cast(cast(ConvertedDate as date) as timestamp) as converted_at,
        ConvertedAccountId as converted_account_id,
        ConvertedOpportunityId as converted_opportunity_id,
        _load_id
    from leads
)

select * from final
