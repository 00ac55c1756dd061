with

{# `not materialized`: the activity type's lookup in the seed is a correlated
   subquery, for which DuckDB would otherwise materialize every raw activity
   before a filter on `_load_id` (new rows only) reaches the scan #}
source as not materialized (
    select * from {{ crm_table('activities') }}
),

renamed as (
    select
        activity_id,
        owner_id,
        activity_type as activity_type_raw,
        {#- a CRM's staging model has mapped its types through the seed already
            (SOURCES.md); a contract file's free text is normalized here #}
        {% if crm_maps('activities') -%}
        activity_type,
        {%- else -%}
        {{ normalize_activity_type('activity_type') }} as activity_type,
        {%- endif %}
        occurred_at,
        lead_id,
        opportunity_id,
        account_id,
        _load_id
    from source
)

select * from renamed
