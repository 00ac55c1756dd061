{{
    levels_add_up(
        ref('kpi_monthly_sales'), ['won_deals', 'won_amount', 'quota_amount']
    )
}}
