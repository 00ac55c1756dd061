{#- The export's format (SOURCES.md) decides where each contract table comes
    from. `var('crm')` is set by the runner before the project is parsed
    (detected from the export's files, or forced by `--crm` / `[tool.kpi] crm`);
    `var('crm_contract_tables')` names the contract-format files placed beside a
    CRM export (`quotas.csv`, ...), which replace their mapped table.

    `crm_table('opportunities')` is the relation holding the contract table:
    the raw table for a contract export or a contract-format file, else the
    CRM's staging model (`stg_salesforce__opportunities`), whose columns and
    types are exactly the contract table's, plus `_load_id`. -#}

{% macro crm_format() -%}
    {{- return(var('crm', 'contract')) -}}
{%- endmacro %}

{% macro crm_table(table) -%}
    {%- if crm_maps(table) -%}
        {{- return(ref('stg_' ~ crm_format() ~ '__' ~ table)) -}}
    {%- else -%}
        {{- return(source('crm', table)) -}}
    {%- endif -%}
{%- endmacro %}

{#- Whether a contract table comes from the CRM's staging model (true) or
    from a contract-format file (false). -#}
{% macro crm_maps(table) -%}
    {{- return(crm_format() != 'contract' and table not in var('crm_contract_tables', [])) -}}
{%- endmacro %}

{#- Whether a CRM's own staging model is parsed: only the models of the format
    in use (`kpi ls` and `kpi compile` stay fast, and no model reads a raw table
    that was not loaded). -#}
{% macro crm_enabled(crm, table=none) -%}
    {{- return(crm_format() == crm and table not in var('crm_contract_tables', [])) -}}
{%- endmacro %}

{#- Whether the CRM in use has no source for a contract table (HubSpot has no
    quotas or subscriptions) and no contract-format file was given for it: the
    marts that need it then hold no rows rather than wrong ones. -#}
{% macro crm_lacks(table) -%}
    {{- return(table in var('crm_missing_tables', [])) -}}
{%- endmacro %}

{#- A condition on a column naming a mart: false for the marts held empty
    because the CRM lacks their table (for the data tests that expect rows). -#}
{% macro crm_mart_expected(column) -%}
    {%- set empty = [] -%}
    {%- if crm_lacks('quotas') %}{% do empty.append('kpi_quota_attainment') %}{% endif -%}
    {%- if crm_lacks('subscriptions') %}{% do empty.append('kpi_churn') %}{% endif -%}
    {%- if empty -%}
        {{ column }} not in ('{{ empty | join("', '") }}')
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The raw tables a contract table's rows are only ever added to, for
    `append_only` (an update there rebuilds the incremental model in full).
    Salesforce activities depend on the export's newest SystemModstamp, read
    from every object, so any update rebuilds them. -#}
{% macro crm_append_only(table) -%}
    {%- set crm = crm_format() -%}
    {%- if crm == 'contract' or table in var('crm_contract_tables', []) -%}
        {{- return(['crm.' ~ table]) -}}
    {%- elif crm == 'salesforce' and table == 'activities' -%}
        {{- return(['salesforce.Task', 'salesforce.Event', 'salesforce.User',
            'salesforce.UserRole', 'salesforce.Account', 'salesforce.Opportunity',
            'salesforce.OpportunityHistory', 'salesforce.OpportunityStage', 'salesforce.Lead',
            'salesforce.ForecastingQuota', 'salesforce.Period', 'salesforce.Contract',
            'salesforce.DatedConversionRate', 'salesforce.CurrencyType']) -}}
    {%- elif crm == 'salesforce' and table == 'leads' -%}
        {{- return(['salesforce.Lead']) -}}
    {%- elif crm == 'hubspot' and table == 'activities' -%}
        {{- return(['hubspot.engagement_call', 'hubspot.engagement_email',
            'hubspot.engagement_meeting', 'hubspot.engagement', 'hubspot.engagement_contact',
            'hubspot.engagement_deal']) -}}
    {%- elif crm == 'hubspot' and table == 'leads' -%}
        {{- return(['hubspot.contact']) -}}
    {%- else -%}
        {{- return([]) -}}
    {%- endif -%}
{%- endmacro %}


{% macro stage_changes(rows, deal_id, stage_name, entered_at, tiebreak) -%}
    {#- The rows of `rows` (a CTE) that start a stage, as the contract's
        opportunity_stage_history: per deal, in `entered_at` order (ties by
        `tiebreak`), the first row and every row whose stage differs from the
        previous row's (SOURCES.md: a CRM's history logs changes of other
        fields too). Whether a row is kept depends on its neighbours, so
        `_load_id` is the newest load among the deal's rows. -#}
    select
        {{ deal_id }} as opportunity_id,
        {{ stage_name }} as stage_name,
        {{ entered_at }} as entered_at,
        deal_load_id as _load_id
    from (
        select
            *,
            lag({{ stage_name }}) over (
                partition by {{ deal_id }} order by {{ entered_at }}, {{ tiebreak }}
            ) as previous_stage_name,
            row_number() over (
                partition by {{ deal_id }} order by {{ entered_at }}, {{ tiebreak }}
            ) as position,
            max(_load_id) over (partition by {{ deal_id }}) as deal_load_id
        from {{ rows }}
    ) as sequenced
    where position = 1 or {{ stage_name }} is distinct from previous_stage_name
{%- endmacro %}


{% macro salesforce_current_opportunities() -%}
    {#- The deals as they are now. A Data Export holds one row per deal; a
        replicated copy in history mode one row per version (`_fivetran_start`),
        whose newest is the deal now, or no deal when it is not
        `_fivetran_active` (deleted since). -#}
    select * from {{ source('salesforce', 'Opportunity') }}
    where _fivetran_start is null
    union all
    {#- the newest version: no version of the deal starts later (Id and
        `_fivetran_start` are the copy's primary key) #}
    select * from {{ source('salesforce', 'Opportunity') }} as version
    where _fivetran_start is not null
        and _fivetran_active is distinct from false
        and not exists (
            select 1 from {{ source('salesforce', 'Opportunity') }} as newer
            where newer.Id = version.Id and newer._fivetran_start > version._fivetran_start
        )
{%- endmacro %}
