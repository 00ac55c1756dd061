{{ levels_add_up(ref('kpi_days_to_close'), ['won_deals', 'total_days_to_close']) }}
