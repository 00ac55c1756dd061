{#- The exchange rates as date ranges (KPI_SPEC section 5): a value dated d is
    converted by the rate of its currency with the latest valid_from on or
    before d, or by the earliest rate when d precedes them all. So each rate
    is in effect from its valid_from (the earliest one: from the beginning) to
    the next valid_from of its currency, excluded. -#}

with

exchange_rates as (
    select
        currency_code,
        valid_from,
        rate,
        _load_id
    from {{ ref('stg_crm__exchange_rates') }}
),

ranged as (
    select
        currency_code,
        valid_from,
        case
            when row_number() over currency_rates = 1 then date '0001-01-01'
            else valid_from
        end as effective_from,
        coalesce(lead(valid_from) over currency_rates, date '9999-12-31') as effective_to,
        rate,
        {# a new rate moves the end of the one before it: every rate of the
           currency carries the newest load among them #}
        max(_load_id) over (partition by currency_code) as _load_id
    from exchange_rates
    window currency_rates as (partition by currency_code order by valid_from)
)

select * from ranged
