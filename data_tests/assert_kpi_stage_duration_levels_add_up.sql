{{
    levels_add_up(
        ref('kpi_stage_duration'),
        ['exits', 'total_days_in_stage', 'open_deals_at_month_end'],
        keys=['month', 'stage_name'],
        approximate=['total_days_in_stage']
    )
}}
