{#- Activity types (KPI_SPEC section 3), as the seed `activity_types` maps them. -#}

{#- The activity type a spelling of `field` maps to, NULL when the seed has no
    row for it. The seed's columns are renamed inside, so that `spelling` (an
    expression over the caller's columns) cannot name one of them. -#}
{% macro mapped_activity_type(field, spelling) -%}
    (
        select mapping.mapped_activity_type
        from (
            select
                field as mapped_field,
                spelling as mapped_spelling,
                activity_type as mapped_activity_type
            from {{ ref('activity_types') }}
        ) as mapping
        where mapping.mapped_field = '{{ field }}'
            and mapping.mapped_spelling = {{ spelling }}
    )
{%- endmacro %}

{#- A free-text activity type: matched case-insensitively after removing
    leading and trailing whitespace (spaces, tabs, line breaks); a type the seed
    does not list is `other`. -#}
{% macro normalize_activity_type(column) -%}
    coalesce(
        {{ mapped_activity_type('type', activity_type_spelling(column)) }},
        'other'
    )
{%- endmacro %}

{#- How a free-text type is matched against the seed's `type` spellings:
    lower-cased, without leading and trailing spaces, tabs and line breaks. -#}
{% macro activity_type_spelling(column) -%}
    {%- set whitespace = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)" -%}
    lower(trim({{ column }}, {{ whitespace }}))
{%- endmacro %}
