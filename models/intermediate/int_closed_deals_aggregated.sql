{#- Closed deals per close month and owner: the shared, additive input of the
    marts about closed and won deals (win rate, deal size, days to close, quota
    attainment, monthly sales). -#}

with

closed_opportunities as (
    select
        close_month,
        owner_id,
        owner_team_id,
        amount,
        is_won,
        is_lost,
        days_to_close
    from {{ ref('int_opportunities_enriched') }}
    where is_closed
),

final as (
    select
        close_month,
        owner_id,
        owner_team_id,
        count(*) as closed_deals,
        {{ count_where('is_won') }} as won_deals,
        {{ count_where('is_lost') }} as lost_deals,
        {# a NULL amount counts 0 #}
        {{ sum_or_zero('amount', 'decimal(38, 4)', 'is_won') }} as won_amount,
        {{ sum_or_zero('days_to_close', 'bigint', 'is_won') }} as total_days_to_close
    from closed_opportunities
    group by
        close_month,
        owner_id,
        owner_team_id
)

select * from final
