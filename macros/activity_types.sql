{% macro normalize_activity_type(column) -%}
    {#- KPI_SPEC section 3: matched case-insensitively after removing leading and
        trailing whitespace (spaces, tabs, newlines); anything else is `other`. -#}
    {%- set whitespace = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)" -%}
    case lower(trim({{ column }}, {{ whitespace }}))
        when 'call' then 'call'
        when 'email' then 'email'
        when 'meeting' then 'meeting'
        when 'demo' then 'demo'
        else 'other'
    end
{%- endmacro %}
