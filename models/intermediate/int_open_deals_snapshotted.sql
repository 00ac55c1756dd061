{#- Open deals at each month end of the range, per deal owner and stage: deals
    whose latest stage-history row entered before the first instant of the next
    month is in a stage that is not closed (KPI_SPEC section 3). A row opened in
    month m and followed by a row entered in month n is that latest row at the
    end of months m .. n - 1 (every month from m when it is the last row), so
    each row adds 1 from m and takes it back at n; a running sum per owner and
    stage gives the count at every month end without expanding deals into
    months. Only counts above zero are kept. -#}

with

months as (
    select month from {{ ref('int_months_reported') }}
),

stage_entries as (
    select
        owner_id,
        owner_team_id,
        stage_name,
        entered_month,
        left_month
    from {{ ref('int_stage_intervals_sequenced') }}
    where
        not is_closed_stage
        and (left_month is null or left_month > entered_month)
),

changes as (
    select
        owner_id,
        owner_team_id,
        stage_name,
        entered_month as month,
        1 as open_deals_change
    from stage_entries

    union all

    select
        owner_id,
        owner_team_id,
        stage_name,
        left_month as month,
        -1 as open_deals_change
    from stage_entries
    where left_month is not null
),

monthly_changes as (
    select
        owner_id,
        owner_team_id,
        stage_name,
        month,
        sum(open_deals_change) as open_deals_change
    from changes
    group by
        owner_id,
        owner_team_id,
        stage_name,
        month
),

running_counts as (
    select
        owner_id,
        owner_team_id,
        stage_name,
        month as from_month,
        lead(month) over owner_stage as to_month,
        sum(open_deals_change) over (
            partition by owner_id, stage_name order by month
            rows between unbounded preceding and current row
        ) as open_deals
    from monthly_changes
    window owner_stage as (partition by owner_id, stage_name order by month)
),

final as (
    select
        months.month,
        running_counts.owner_id,
        running_counts.owner_team_id,
        running_counts.stage_name,
        cast(running_counts.open_deals as bigint) as open_deals
    from running_counts
    inner join months
        on months.month >= running_counts.from_month
        and (running_counts.to_month is null or months.month < running_counts.to_month)
    where running_counts.open_deals > 0
)

select * from final
