{#- Money in the reporting currency (KPI_SPEC section 5). While the var
    `reporting_currency` is unset, nothing is converted and these macros render
    nothing or the value itself, so the marts keep their section-2 columns. -#}

{% macro reporting_currency() -%}
    {{- var('reporting_currency', none) or '' -}}
{%- endmacro %}


{% macro money_in_reporting_currency(amount, currency_code, rate) -%}
    {#- `amount` (money, in `currency_code`; NULL = the reporting currency) in the
        reporting currency: divided by `rate` (units of the currency per 1 unit
        of the reporting currency), as DECIMAL(18, 4). -#}
    case
        when {{ currency_code }} is null
            or {{ currency_code }} = {{ sql_literal(reporting_currency()) }}
            then {{ amount }}
        else {{ money_divided_by_rate(amount, rate) }}
    end
{%- endmacro %}


{% macro money_divided_by_rate(amount, rate) -%}
    {#- `amount` (4 decimals) / `rate` (10 decimals), rounded half away from zero
        to 4 decimals, in exact integer arithmetic: DuckDB divides DECIMALs as
        DOUBLE. In units of 0.0001: amount x 10^4 x 10^10 / (rate x 10^10). -#}
    cast(
        cast(
            sign({{ amount }}) * (
                (
                    2 * cast(abs(cast({{ amount }} as decimal(38, 4))) * 10000 as hugeint)
                        * 10000000000
                    + cast(cast({{ rate }} as decimal(38, 10)) * 10000000000 as hugeint)
                ) // (2 * cast(cast({{ rate }} as decimal(38, 10)) * 10000000000 as hugeint))
            ) as decimal(38, 0)
        ) * 0.0001
        as decimal(18, 4)
    )
{%- endmacro %}


{% macro rate_in_effect(rates, currency_code, on_date) -%}
    {#- The join condition that picks, from `rates` (int_exchange_rates_ranged),
        the rate of `currency_code` in effect on `on_date`. -#}
    {{ rates }}.currency_code = {{ currency_code }}
        and {{ on_date }} >= {{ rates }}.effective_from
        and {{ on_date }} < {{ rates }}.effective_to
{%- endmacro %}


{% macro currency_code_column() -%}
    {#- `'<reporting currency>' as currency_code,` (a column of a money mart,
        written before another column) while a reporting currency is set;
        nothing otherwise. -#}
    {%- if reporting_currency() -%}
        cast({{ sql_literal(reporting_currency()) }} as varchar) as currency_code,
    {%- endif -%}
{%- endmacro %}
