{{
    levels_add_up(
        ref('kpi_sales_effort'),
        ['calls', 'emails', 'meetings', 'demos', 'other_activities', 'total_activities']
    )
}}
