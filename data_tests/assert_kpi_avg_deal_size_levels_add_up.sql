{{ levels_add_up(ref('kpi_avg_deal_size'), ['won_deals', 'won_amount']) }}
