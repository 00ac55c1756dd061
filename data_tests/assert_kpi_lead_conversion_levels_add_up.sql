{{ levels_add_up(ref('kpi_lead_conversion'), ['leads', 'mqls', 'sqls', 'customers']) }}
