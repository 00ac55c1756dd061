{#- Our runner builds a model in the schema its config names (`schema='marts'`
    means schema `marts`); dbt's default would make it `<target schema>_marts`. -#}

{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}
