{#- KPI 6, stage duration: days spent in each pipeline stage, by the month the
    deal left the stage and deal owner, with the deals open in the stage at month
    end. Company rows exist for every stage that is not closed in every month;
    team and rep rows only where exits > 0 or open deals > 0. -#}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

open_stages as (
    select
        stage_name,
        stage_order
    from {{ ref('stg_crm__pipeline_stages') }}
    where not is_closed
),

exits as (
    select
        left_month as month,
        owner_team_id as team_id,
        owner_id as rep_id,
        stage_name,
        microseconds_in_stage,
        days_in_stage
    from {{ ref('int_stage_intervals_sequenced') }}
    where is_exit
),

open_deals as (
    select
        month,
        owner_team_id as team_id,
        owner_id as rep_id,
        stage_name,
        open_deals
    from {{ ref('int_open_deals_snapshotted') }}
),

rep_rows as (
    {# one row per exit (days_in_stage) and per rep's open-deal count: the median
       is over the exits themselves at every level #}
    {{ union_all_by_name([
        ['exits', [
            'month', 'team_id', 'rep_id', 'stage_name', 'microseconds_in_stage',
            'days_in_stage',
        ]],
        ['open_deals', ['month', 'team_id', 'rep_id', 'stage_name', 'open_deals']]
    ]) }}
),

month_stages as (
    select
        months.month,
        open_stages.stage_name,
        open_stages.stage_order
    from months
    cross join open_stages
),

rolled_up as (
    {% call rollup_by_level(
        'rep_rows',
        spine='month_stages',
        keys=['month', 'stage_name', 'stage_order'],
        join_keys=['month', 'stage_name'],
    ) %}
        count(rep_rows.days_in_stage) as exits,
        {# summed exactly in microseconds, then divided once: the same total
           whatever the order in which DuckDB adds the rows #}
        {{ safe_divide(sum_or_zero('rep_rows.microseconds_in_stage', 'decimal(38, 0)'),
            '86400000000.0') }} as total_days_in_stage,
        median(rep_rows.days_in_stage) as median_days_in_stage,
        {{ sum_or_zero('rep_rows.open_deals') }} as open_deals_at_month_end
    {% endcall %}
),

final as (
    select
        month,
        level,
        team_id,
        rep_id,
        stage_name,
        stage_order,
        exits,
        total_days_in_stage,
        {{ safe_divide('total_days_in_stage', 'exits') }} as avg_days_in_stage,
        median_days_in_stage,
        open_deals_at_month_end
    from rolled_up
)

select * from final
