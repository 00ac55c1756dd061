{{ levels_add_up(ref('kpi_win_rate'), ['won_deals', 'lost_deals', 'closed_deals']) }}
