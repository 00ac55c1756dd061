{{
    levels_add_up(
        ref('kpi_quota_attainment'),
        ['quota_amount', 'won_amount', 'reps_with_quota', 'reps_meeting_quota']
    )
}}
