{{
    levels_add_up(
        ref('kpi_lead_response_time'),
        ['leads', 'contacted_leads', 'total_response_minutes', 'contacted_within_1h'],
        approximate=['total_response_minutes']
    )
}}
