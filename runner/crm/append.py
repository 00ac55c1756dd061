"""Appending: an existing export moved forward (`generate_export(append=True)`).

`append_export` moves the export forward by one to two weeks, starting one
second after its latest timestamp: new leads, new deals (from new leads or
without a lead, on new or existing accounts), stage changes of open deals
(some close), activities, subscriptions of deals won in that window, a few
churned subscriptions and the quotas of a month that starts in it. The
snapshot tables are rewritten in place; the event tables (leads, activities,
opportunity_stage_history) keep their files and get a new part file
`<table>.append-NNNN.<ext>` with the new rows only. The draws of an append are
keyed by the seed and the part number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from runner.crm.draws import (
    PRODUCTS,
    activity_kind,
    create_macros,
    row_count,
    sql_date,
    sql_list,
    sql_ts,
    weighted_case,
)
from runner.crm.export_contract import CONTRACT, EVENT_TABLES, ID_PREFIXES
from runner.crm.files import next_part_number, read_export, table_path, write_table
from runner.crm.simulation import TEAM_PROFILES
from runner.errors import ProjectError


def append_export(
    con: duckdb.DuckDBPyConnection, out_dir: Path, seed: int, file_format: str
) -> dict[str, int]:
    """Extend the export in out_dir by one to two weeks (see the module docstring)."""
    part = next_part_number(out_dir, file_format)
    read_export(con, out_dir, file_format)
    create_macros(con, seed, f"seed={seed};append={part}")
    window = plan_append_window(con, part)
    create_profiles(con)
    create_append_pools(con, window)
    draw_stage_changes(con, window)
    draw_new_deals(con, window)
    draw_new_leads(con, window)
    collect_new_history(con)
    draw_new_activities(con, window)
    update_snapshots(con, window)
    counts = {}
    for table in CONTRACT:
        if table in EVENT_TABLES:
            path = table_path(out_dir, table, file_format, part)
            counts[table] = write_table(con, f"new_{table}", table, path)
        else:
            path = table_path(out_dir, table, file_format)
            counts[table] = write_table(con, f"next_{table}", table, path)
    return counts


@dataclass(frozen=True)
class AppendWindow:
    """New events happen in [start, end); `start` is one second after the latest one."""

    part: int
    start: datetime
    end: datetime

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def plan_append_window(con: duckdb.DuckDBPyConnection, part: int) -> AppendWindow:
    latest = con.execute("""
        SELECT greatest(
            (SELECT max(greatest(created_at, mql_at, sql_at, converted_at)) FROM cur_leads),
            (SELECT max(occurred_at) FROM cur_activities),
            (SELECT max(entered_at) FROM cur_opportunity_stage_history),
            (SELECT max(greatest(created_at, close_date::TIMESTAMP)) FROM cur_opportunities),
            (SELECT max(created_at) FROM cur_accounts),
            (SELECT max(greatest(started_at, ended_at))::TIMESTAMP FROM cur_subscriptions),
            (SELECT max(month)::TIMESTAMP FROM cur_quotas),
            (SELECT max(greatest(hired_at, terminated_at))::TIMESTAMP FROM cur_users))
    """).fetchone()
    if not latest or latest[0] is None:
        raise ProjectError(
            "cannot append to an export without any timestamp: every table is empty.",
            hint="Generate a new export first (kpi generate DIR without --append).",
        )
    start = latest[0].replace(microsecond=0) + timedelta(seconds=1)
    draw = con.execute("SELECT u('append-window', 0)").fetchone()
    days = 7 + int(8 * draw[0]) if draw else 7
    return AppendWindow(part, start, start + timedelta(days=days))


def create_profiles(con: duckdb.DuckDBPyConnection) -> None:
    """Each user's team profile, recovered from the team number."""
    con.execute(
        "CREATE TABLE profiles (profile_n INTEGER, win_rate DOUBLE, deal_size DOUBLE,"
        " cycle_days DOUBLE)"
    )
    con.executemany(
        "INSERT INTO profiles VALUES (?, ?, ?, ?)",
        [[i, p.win_rate, p.deal_size, p.cycle_days] for i, p in enumerate(TEAM_PROFILES)],
    )
    con.execute(f"""
        CREATE TABLE user_profiles AS
        SELECT r.user_id, coalesce(p.deal_size, 15000) AS deal_size
        FROM cur_users r
        LEFT JOIN profiles p ON p.profile_n = (id_number(r.team_id) - 1) % {len(TEAM_PROFILES)}
    """)


def create_append_pools(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """Reps employed at the end of the window, stage names, numbered accounts."""
    day = sql_date(window.end.date())
    con.execute(f"""
        CREATE TABLE pool AS
        SELECT coalesce(
            (SELECT list(user_id ORDER BY user_id) FROM cur_users WHERE role = 'rep'
                AND hired_at <= {day} AND (terminated_at IS NULL OR terminated_at >= {day})),
            (SELECT list(user_id ORDER BY user_id) FROM cur_users)) AS reps,
            (SELECT count(*) FROM cur_accounts) AS accounts;
        CREATE TABLE numbered_accounts AS
        SELECT row_number() OVER (ORDER BY account_id) AS account_idx, account_id
        FROM cur_accounts;
        CREATE TABLE stage_names AS
        SELECT stage_order, stage_name, is_closed, is_won FROM cur_pipeline_stages;
    """)


def stage_name_sql(condition: str) -> str:
    return f"(SELECT stage_name FROM stage_names WHERE {condition} ORDER BY stage_order LIMIT 1)"


FIRST_STAGE = stage_name_sql("stage_order = (SELECT min(stage_order) FROM stage_names)")
SECOND_STAGE = stage_name_sql(
    "NOT is_closed AND stage_order > (SELECT min(stage_order) FROM stage_names)"
)


def draw_stage_changes(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """Open deals move during the window: 6% are lost, 6% of those in proposal or
    later are won, 18% advance a stage and 3% go back one."""
    con.execute(f"""
        CREATE TABLE deal_changes AS
        WITH open_deals AS (
            SELECT o.opportunity_id, o.owner_id, s.stage_order,
                u('change', o.opportunity_id) AS r,
                {sql_ts(window.start)} + secs({window.seconds} * u('change-at', o.opportunity_id))
                    AS changed_at
            FROM cur_opportunities o JOIN stage_names s USING (stage_name)
            WHERE NOT o.is_closed
        ), moved AS (
            SELECT *, CASE
                WHEN r < 0.06 THEN {stage_name_sql("is_closed AND NOT is_won")}
                WHEN r < 0.12 AND stage_order >= 3 THEN {stage_name_sql("is_closed AND is_won")}
                WHEN r < 0.30 THEN {stage_name_sql("NOT is_closed AND stage_order > o.stage_order")}
                WHEN r < 0.33 THEN (SELECT stage_name FROM stage_names
                    WHERE NOT is_closed AND stage_order < o.stage_order
                    ORDER BY stage_order DESC LIMIT 1)
                END AS stage_name
            FROM open_deals o
        )
        SELECT m.opportunity_id, m.owner_id, m.changed_at, m.stage_name, s.is_closed, s.is_won
        FROM moved m JOIN stage_names s USING (stage_name)
    """)


def draw_new_deals(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """About 1% new deals, numbered by creation time: 30% open a new account, half
    come from a (new) lead; 35% reach the second stage within the window."""
    prefix, width, last = id_scheme(con, "opportunities", "opportunity_id")
    a_prefix, a_width, a_last = id_scheme(con, "accounts", "account_id")
    count = max(1, round(0.01 * row_count(con, "cur_opportunities")))
    other_type = weighted_case(
        "u('deal-type', k)", [("new_business", 0.2), ("expansion", 0.55), ("renewal", 0.25)]
    )
    start = sql_ts(window.start)
    con.execute(f"""
        CREATE TABLE new_deals AS
        WITH slots AS (
            SELECT k, {start} + secs({window.seconds} * (k - 1 + u('deal-created', k)) / {count})
                    AS created_at,
                u('deal-new-account', k) < 0.3 OR (SELECT accounts FROM pool) = 0 AS new_account
            FROM range(1, {count} + 1) t(k)
        ), owned AS (
            SELECT s.*, pick((SELECT reps FROM pool), 'deal-owner', k) AS owner_id,
                fmt_id('{prefix}', {last} + k, {width}) AS opportunity_id,
                CASE WHEN new_account THEN fmt_id('{a_prefix}', {a_last} + sum(new_account::INTEGER)
                    OVER (ORDER BY k), {a_width}) END AS new_account_id,
                1 + floor(u('deal-account', k) * (SELECT accounts FROM pool))::BIGINT
                    AS account_idx,
                u('deal-lead', k) < 0.5 AS from_lead,
                CASE WHEN u('deal-advance', k) < 0.35 THEN created_at
                    + secs(date_diff('second', created_at, {sql_ts(window.end)})
                        * u('deal-advance-at', k)) END AS advanced_at
            FROM slots s
        )
        SELECT w.k, w.opportunity_id, coalesce(w.new_account_id, a.account_id) AS account_id,
            w.owner_id, w.from_lead, w.new_account, w.created_at, w.advanced_at,
            CASE WHEN w.new_account THEN 'new_business' ELSE {other_type} END AS opportunity_type,
            CASE WHEN w.advanced_at IS NULL AND u('deal-amount-null', k) < 0.4 THEN NULL
                ELSE round(p.deal_size * exp(0.6 * gauss('deal-amount', k)) * CASE opportunity_type
                    WHEN 'expansion' THEN 0.45 WHEN 'renewal' THEN 0.8 ELSE 1 END, -1)
                END::DECIMAL(18,2) AS amount
        FROM owned w JOIN user_profiles p ON p.user_id = w.owner_id
        LEFT JOIN numbered_accounts a ON a.account_idx = w.account_idx
    """)


def id_scheme(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[str, int, int]:
    """Prefix, digit count and highest number of a table's ids."""
    row = con.execute(f"""
        SELECT min(regexp_replace({column}, '[0-9]+$', '')),
            max(length(regexp_extract({column}, '([0-9]+)$', 1))), max(id_number({column}))
        FROM cur_{table}
    """).fetchone()
    prefix, width, last = row if row else (None, None, None)
    return (
        prefix if prefix is not None else ID_PREFIXES[table],
        int(width or 4),
        int(last or 0),
    )


def draw_new_leads(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """About 1% new leads: the leads of the new deals that come from one, and
    fresh leads of which 30% become MQL and 30% of those SQL within the window."""
    prefix, width, last = id_scheme(con, "leads", "lead_id")
    total = max(1, round(0.01 * row_count(con, "cur_leads")))
    converted = row_count(con, "new_deals WHERE from_lead")
    fresh = max(0, total - converted)
    start, end = sql_ts(window.start), sql_ts(window.end)
    sources: list[tuple[str | None, float]] = [
        ("web", 40), ("referral", 15), ("event", 10), ("outbound", 30), ("partner", 5)
    ]  # fmt: skip
    con.execute(f"""
        CREATE TABLE new_leads_draft AS
        WITH fresh AS (
            SELECT j, {start} + secs({window.seconds} * (j - 1 + u('lead-created', j)) / {fresh})
                AS created_at
            FROM range(1, {fresh} + 1) t(j)
        ), fresh_funnel AS (
            SELECT *, CASE WHEN u('lead-mql', j) < 0.3 THEN created_at
                + secs(date_diff('second', created_at, {end}) * u('lead-mql-at', j)) END AS mql_at
            FROM fresh
        )
        SELECT 1 AS src, k AS src_n, created_at, owner_id, lead_source, 'converted' AS status,
            mql_at, mql_at + secs(date_diff('second', mql_at, converted_at) * 0.5) AS sql_at,
            converted_at, account_id AS converted_account_id,
            opportunity_id AS converted_opportunity_id
        FROM (
            SELECT k, owner_id, account_id, opportunity_id, created_at AS converted_at,
                {weighted_case("u('clead-source', k)", sources)} AS lead_source,
                {start} + secs(date_diff('second', {start}, created_at) * u('clead-at', k))
                    AS created_at,
                created_at + secs(date_diff('second', created_at, converted_at)
                    * u('clead-mql', k)) AS mql_at
            FROM new_deals WHERE from_lead)
        UNION ALL
        SELECT 2, j, created_at, pick((SELECT reps FROM pool), 'lead-owner', j),
            {weighted_case("u('lead-source', j)", sources)},
            CASE WHEN sql_at IS NOT NULL THEN 'qualified' WHEN mql_at IS NOT NULL THEN 'working'
                WHEN u('lead-status', j) < 0.3 THEN 'working' ELSE 'new' END,
            mql_at, sql_at, NULL, NULL, NULL
        FROM (SELECT *, CASE WHEN mql_at IS NOT NULL AND u('lead-sql', j) < 0.3 THEN mql_at
            + secs(date_diff('second', mql_at, {end}) * u('lead-sql-at', j)) END AS sql_at
            FROM fresh_funnel);
        CREATE TABLE new_leads AS
        SELECT fmt_id('{prefix}', {last} + row_number() OVER (ORDER BY created_at, src, src_n),
            {width}) AS lead_id, * EXCLUDE (src, src_n)
        FROM new_leads_draft;
    """)


def collect_new_history(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""
        CREATE TABLE new_opportunity_stage_history AS
        SELECT opportunity_id, stage_name, changed_at AS entered_at FROM deal_changes
        UNION ALL
        SELECT opportunity_id, {FIRST_STAGE}, created_at FROM new_deals
        UNION ALL
        SELECT opportunity_id, {SECOND_STAGE}, advanced_at FROM new_deals
        WHERE advanced_at IS NOT NULL
    """)


def draw_new_activities(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """Contact attempts on 85% of the new leads, work on the new deals and on a
    quarter of the deals that were open, numbered by time."""
    prefix, width, last = id_scheme(con, "activities", "activity_id")
    start, end = sql_ts(window.start), sql_ts(window.end)
    con.execute(f"""
        CREATE TABLE new_activities AS
        WITH lead_touches AS (
            SELECT lead_id, owner_id, created_at, unnest(range(1 + floor(2 * u('lead-touches',
                lead_id))::INTEGER)) AS k
            FROM new_leads WHERE status = 'converted' OR u('lead-contacted', lead_id) < 0.85
        ), deal_touches AS (
            SELECT opportunity_id, account_id, owner_id, created_at AS since,
                unnest(range(1 + floor(3 * u('deal-touches', opportunity_id))::INTEGER)) AS k,
                1 + floor(3 * u('deal-touches', opportunity_id))::INTEGER AS touches
            FROM new_deals
            UNION ALL
            SELECT opportunity_id, account_id, owner_id, {start},
                unnest(range(1 + floor(2 * u('open-touches', opportunity_id))::INTEGER)),
                1 + floor(2 * u('open-touches', opportunity_id))::INTEGER
            FROM cur_opportunities WHERE NOT is_closed AND u('open-touched', opportunity_id) < 0.25
        ), touches AS (
            SELECT 1 AS src, lead_id AS parent, k, owner_id, lead_id, NULL AS opportunity_id,
                NULL AS account_id,
                created_at + secs(60 * (5 + 600 * u2('lead-response', lead_id, k)) * (1 + 4 * k))
                    AS occurred_at,
                {activity_kind("u2('lead-touch-kind', lead_id, k)", "lead")} AS kind
            FROM lead_touches
            UNION ALL
            SELECT 2, opportunity_id, k, owner_id, NULL, opportunity_id, account_id,
                since + secs(date_diff('second', since, {end})
                    * (k + u2('deal-touch-at', opportunity_id, k)) / touches),
                {activity_kind("u2('deal-touch-kind', opportunity_id, k)", "deal")}
            FROM deal_touches
        )
        SELECT fmt_id('{prefix}', {last} + row_number() OVER (ORDER BY occurred_at, src, parent, k),
                {width}) AS activity_id,
            owner_id, activity_type_text(kind, u3('activity-style', src, parent, k),
                u3('activity-other', src, parent, k)) AS activity_type,
            occurred_at, lead_id, opportunity_id, account_id
        FROM touches WHERE occurred_at < {end}
    """)


def update_snapshots(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """The snapshot tables after the window: deals with their new stage, new deals
    and accounts, subscriptions started or ended, quotas of a new month."""
    s_prefix, s_width, s_last = id_scheme(con, "subscriptions", "subscription_id")
    first_day = window.start.date() + timedelta(1)
    con.execute(f"""
        CREATE VIEW next_teams AS SELECT * FROM cur_teams;
        CREATE VIEW next_users AS SELECT * FROM cur_users;
        CREATE VIEW next_pipeline_stages AS SELECT * FROM cur_pipeline_stages;
        CREATE TABLE next_opportunities AS
        SELECT o.opportunity_id, o.account_id, o.owner_id, o.lead_id, o.opportunity_name,
            o.opportunity_type,
            CASE WHEN c.is_won AND o.amount IS NULL
                THEN round(p.deal_size * exp(0.6 * gauss('won-amount', o.opportunity_id)), -1)
                ELSE o.amount END::DECIMAL(18,2) AS amount,
            coalesce(c.stage_name, o.stage_name) AS stage_name,
            coalesce(c.is_closed, o.is_closed) AS is_closed,
            coalesce(c.is_won, o.is_won) AS is_won, o.created_at,
            CASE WHEN c.is_closed THEN c.changed_at::DATE ELSE o.close_date END AS close_date
        FROM cur_opportunities o LEFT JOIN deal_changes c USING (opportunity_id)
        LEFT JOIN user_profiles p ON p.user_id = o.owner_id
        UNION ALL
        SELECT d.opportunity_id, d.account_id, d.owner_id, l.lead_id,
            account_name(id_number(d.account_id)) || ' - '
                || pick({sql_list(PRODUCTS)}, 'deal-product', d.k),
            d.opportunity_type, d.amount,
            CASE WHEN d.advanced_at IS NULL THEN {FIRST_STAGE} ELSE {SECOND_STAGE} END,
            false, false, d.created_at, NULL
        FROM new_deals d LEFT JOIN new_leads l ON l.converted_opportunity_id = d.opportunity_id;
        CREATE TABLE next_accounts AS
        SELECT * FROM cur_accounts
        UNION ALL
        SELECT account_id, account_name(id_number(account_id)), industry(id_number(account_id)),
            owner_id, created_at
        FROM new_deals WHERE new_account;
        CREATE TABLE next_subscriptions AS
        SELECT subscription_id, account_id, started_at,
            CASE WHEN ended_at IS NULL AND u('churn', subscription_id) < 0.01
                THEN greatest(started_at + 1, {sql_date(first_day)}
                    + floor({window.seconds // 86400} * u('churn-on', subscription_id))::INTEGER)
                ELSE ended_at END AS ended_at,
            mrr
        FROM cur_subscriptions
        UNION ALL
        SELECT fmt_id('{s_prefix}', {s_last} + row_number() OVER (ORDER BY o.close_date,
                o.opportunity_id), {s_width}),
            o.account_id, o.close_date, NULL, round(o.amount / 12, 2)::DECIMAL(18,2)
        FROM next_opportunities o JOIN deal_changes c USING (opportunity_id)
        WHERE c.is_won AND o.opportunity_type IN ('new_business', 'expansion');
    """)
    extend_quotas(con, window)


def extend_quotas(con: duckdb.DuckDBPyConnection, window: AppendWindow) -> None:
    """Quotas for months that start in the window: each employed rep keeps their
    latest quota (or gets the average latest quota of their team)."""
    con.execute(f"""
        CREATE TABLE next_quotas AS
        WITH months AS (
            SELECT unnest(generate_series(
                (SELECT coalesce(max(month), date_trunc('month', {sql_ts(window.start)})::DATE)
                    FROM cur_quotas) + INTERVAL 1 MONTH,
                date_trunc('month', {sql_ts(window.end)}), INTERVAL 1 MONTH))::DATE AS month
        ), latest AS (
            SELECT user_id, arg_max(quota_amount, month) AS quota_amount
            FROM cur_quotas GROUP BY user_id
        ), team_latest AS (
            SELECT r.team_id, avg(l.quota_amount) AS quota_amount
            FROM latest l JOIN cur_users r USING (user_id) GROUP BY r.team_id
        )
        SELECT * FROM cur_quotas
        UNION ALL
        SELECT r.user_id, m.month,
            coalesce(l.quota_amount, round(t.quota_amount / 500) * 500, 10000)::DECIMAL(18,2)
        FROM cur_users r JOIN months m ON r.role = 'rep'
            AND r.hired_at < (m.month + INTERVAL 1 MONTH)::DATE
            AND (r.terminated_at IS NULL OR r.terminated_at >= m.month)
        LEFT JOIN latest l USING (user_id)
        LEFT JOIN team_latest t USING (team_id)
    """)
