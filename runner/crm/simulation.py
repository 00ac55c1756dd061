"""The simulated sales organisation behind a base export.

`build_base_export` creates internal tables with integer keys and one
`out_<table>` view per contract table over them; `runner.crm.files` writes
the views.

  sales-cycle length); each rep carries a personal skill factor on top.
* Users: a head of sales, one manager per team, and the reps. Some reps are
  hired during the exported period and some leave it (`terminated_at`); deals
  still running when their owner leaves go to a teammate.
* Opportunities are created on business days at a slowly growing rate. A deal
  draws its owner among the reps employed that day (a few deals go to the team
  manager), an account (a new one for about a fifth of the deals, else one that
  already exists), a type, an outcome and a sales-cycle length. Reps pull deals
  in to the quarter end, so closings peak in March, June, September, December.
  Each deal follows a planned path through the pipeline (prospecting,
  qualification, proposal, negotiation, then closed_won or closed_lost), now and
  then skipping a stage or going back one. The export shows the part of the path
  that happened before the export's end (`start` + `months`): a deal whose close
  lies beyond it is open, in the stage it has reached. The stage history is that
  visible path, so it ends in the deal's current stage, and a closed deal's last
  row is entered on its close_date.
* Leads: about a third of the deals come from a lead, converted when the deal
  was created and pointing at the deal and its account; the other leads move
  through the funnel (mql_at, sql_at) without converting.
* Activities: contact attempts on leads (the first one minutes to days after
  the lead arrives; about one lead in ten is never contacted and a few were
  touched before the lead was created), work on deals while they are open, and
  check-ins with older accounts. Types are written the way people type them:
  mixed case, stray whitespace, and a few types outside call/email/meeting/demo.
* Subscriptions: customers from before the period, plus one per won
  new_business or expansion deal; some churn, often on the first of a month.
* Quotas: one per rep for each month of employment on its first day, except the
  month a rep starts and a few random gaps; sized from the team's results.

Per deal there are about 2.5 leads, 10 activities, 3.7 stage-history rows, 0.3
accounts and 0.3 subscriptions (about 18 rows in all). Reps grow mildly with
the deal count (2 * n ** 0.35: 33 for 3,000 deals, 250 for a million), with one
team per seven reps and at least four. Ids are a prefix and a zero-padded
number (`O0001`, `ACT00001`); deals, leads and activities are numbered in time
order. In CSV about 3% of `leads.created_at`, `opportunities.created_at` and
`activities.occurred_at` are written as `...T...Z` or with a `+01:00` offset
(the same instant), to exercise the loader.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

import duckdb

from runner.crm.draws import (
    FIRST_NAMES,
    LAST_NAMES,
    PRODUCTS,
    activity_kind,
    create_macros,
    row_count,
    sql_date,
    sql_list,
    sql_ts,
    weighted_case,
)
from runner.crm.export_contract import ID_PREFIXES

# (stage_name, stage_order, probability, is_closed, is_won)
STAGES = (
    ("prospecting", 1, 0.1, False, False),
    ("qualification", 2, 0.2, False, False),
    ("proposal", 3, 0.4, False, False),
    ("negotiation", 4, 0.7, False, False),
    ("closed_won", 5, 1.0, True, True),
    ("closed_lost", 6, 0.0, True, False),
)


@dataclass(frozen=True)
class TeamProfile:
    name: str
    region: str | None
    win_rate: float
    deal_size: float
    cycle_days: float


TEAM_PROFILES = (
    TeamProfile("Enterprise", "North America", 0.22, 52000, 70),
    TeamProfile("Mid-Market", "North America", 0.30, 19000, 40),
    TeamProfile("SMB", "North America", 0.37, 6500, 18),
    TeamProfile("Enterprise EMEA", "EMEA", 0.25, 45000, 75),
    TeamProfile("Mid-Market EMEA", "EMEA", 0.28, 17000, 42),
    TeamProfile("Inbound", None, 0.40, 5000, 14),
    TeamProfile("APAC", "APAC", 0.26, 14000, 35),
    TeamProfile("Strategic Accounts", "North America", 0.18, 90000, 100),
)


@dataclass(frozen=True)
class Scale:
    """How many rows of each kind a base export gets."""

    opportunities: int
    teams: int
    reps: int
    accounts: int
    old_accounts: int
    leads: int

    @property
    def users(self) -> int:
        return 1 + self.teams + self.reps

    @property
    def new_account_share(self) -> float:
        return (self.accounts - self.old_accounts) / self.opportunities


@dataclass(frozen=True)
class Period:
    """The exported period: [start, end), `end` being the export's "now"."""

    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def add_months(day: date, months: int) -> datetime:
    year, month = divmod(day.month - 1 + months, 12)
    return datetime(day.year + year, month + 1, 1)


def plan_scale(opportunities: int) -> Scale:
    """Row counts: reps grow mildly with the deal count, teams with the reps."""
    reps = max(8, round(2 * opportunities**0.35))
    accounts = round(0.3 * opportunities)
    return Scale(
        opportunities=opportunities,
        teams=max(4, round(reps / 7)),
        reps=reps,
        accounts=accounts,
        old_accounts=max(1, round(0.35 * accounts)),
        leads=round(2.5 * opportunities),
    )


def build_base_export(
    con: duckdb.DuckDBPyConnection, scale: Scale, period: Period, seed: int
) -> None:
    """Create the internal tables (integer keys) and the `out_<table>` views over them."""
    create_macros(con, seed, f"seed={seed}")
    create_stages(con)
    create_teams(con, scale)
    create_users(con, draw_users(scale, seed, period))
    create_staffing(con, period)
    create_opportunities(con, scale, period)
    create_stage_history(con)
    create_accounts(con, scale, period)
    create_leads(con, scale, period)
    create_activities(con, period)
    create_subscriptions(con, period)
    create_quotas(con, period)
    create_export_views(con, scale)


def create_stages(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE stages (stage_name VARCHAR, stage_order INTEGER, probability DOUBLE,"
        " is_closed BOOLEAN, is_won BOOLEAN)"
    )
    con.executemany("INSERT INTO stages VALUES (?, ?, ?, ?, ?)", [list(s) for s in STAGES])


def create_teams(con: duckdb.DuckDBPyConnection, scale: Scale) -> None:
    """Teams cycle through the profiles; a second round gets a number suffix."""
    con.execute(
        "CREATE TABLE teams_raw (team_n INTEGER, team_name VARCHAR, region VARCHAR,"
        " win_rate DOUBLE, deal_size DOUBLE, cycle_days DOUBLE)"
    )
    rows = []
    for team_n in range(1, scale.teams + 1):
        profile = team_profile(team_n)
        round_n = (team_n - 1) // len(TEAM_PROFILES) + 1
        name = profile.name if round_n == 1 else f"{profile.name} {round_n}"
        rows.append(
            [team_n, name, profile.region, profile.win_rate, profile.deal_size, profile.cycle_days]
        )
    con.executemany("INSERT INTO teams_raw VALUES (?, ?, ?, ?, ?, ?)", rows)


def team_profile(team_n: int) -> TeamProfile:
    return TEAM_PROFILES[(team_n - 1) % len(TEAM_PROFILES)]


UserRow = tuple[int, str, str | None, str, int | None, int | None, date, date | None, float]


def draw_users(scale: Scale, seed: int, period: Period) -> list[UserRow]:
    """Head of sales (user 1), one manager per team (users 2..teams+1), then the reps.

    Every sixth rep is hired during the period and every seventh leaves during it.
    """
    rng = random.Random(seed)
    start, days = period.start.date(), period.days
    names = draw_person_names(rng, scale.users)
    rows = [manager_row(1, names[0], None, None, start - timedelta(rng.randint(1500, 3000)))]
    for team_n in range(1, scale.teams + 1):
        hired = start - timedelta(rng.randint(400, 2500))
        rows.append(manager_row(1 + team_n, names[team_n], team_n, 1, hired))
    for k in range(scale.reps):
        user_n = scale.teams + 2 + k
        team_n = 1 + k % scale.teams
        hired = start - timedelta(rng.randint(30, 2200))
        if k % 6 == 4:
            hired = start + timedelta(rng.randint(days // 10, days * 3 // 4))
        terminated = None
        first_day, last_day = max(hired, start) + timedelta(days // 6), start + timedelta(days - 15)
        if k % 7 == 5 and first_day < last_day:
            terminated = first_day + timedelta(rng.randint(0, (last_day - first_day).days))
        skill = round(0.75 + 0.5 * rng.random(), 3)
        email = email_for(names[user_n - 1]) if rng.random() >= 0.05 else None
        rows.append(
            (user_n, names[user_n - 1], email, "rep", team_n, 1 + team_n, hired, terminated, skill)
        )
    return rows


def manager_row(
    user_n: int, name: str, team_n: int | None, manager_n: int | None, hired: date
) -> UserRow:
    return (user_n, name, email_for(name), "manager", team_n, manager_n, hired, None, 1.0)


def draw_person_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in names:
            names.append(name)
    return names


def email_for(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = re.sub(r"[^a-z.]", "", ascii_name.lower().replace(" ", "."))
    return f"{local}@example.com"


def create_users(con: duckdb.DuckDBPyConnection, rows: list[UserRow]) -> None:
    con.execute(
        "CREATE TABLE users_raw (user_n INTEGER, full_name VARCHAR, email VARCHAR, role VARCHAR,"
        " team_n INTEGER, manager_n INTEGER, hired_at DATE, terminated_at DATE, skill DOUBLE)"
    )
    con.executemany("INSERT INTO users_raw VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def create_staffing(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """Reps employed on each day of the period, overall and per team."""
    employed = f"""
        SELECT d.day, r.team_n, r.user_n
        FROM (SELECT {sql_date(period.start)} + i::INTEGER AS day
              FROM range({period.days}) t(i)) d
        JOIN users_raw r ON r.role = 'rep' AND r.hired_at <= d.day
            AND (r.terminated_at IS NULL OR r.terminated_at >= d.day)
    """
    con.execute(f"""
        CREATE TABLE active_reps AS
        SELECT day, list(user_n ORDER BY user_n) AS reps FROM ({employed}) GROUP BY day;
        CREATE TABLE active_team_reps AS
        SELECT day, team_n, list(user_n ORDER BY user_n) AS reps FROM ({employed})
        GROUP BY day, team_n;
        CREATE TABLE team_managers AS
        SELECT team_n, min(user_n) AS manager_n FROM users_raw
        WHERE role = 'manager' AND team_n IS NOT NULL GROUP BY team_n;
    """)


def create_opportunities(con: duckdb.DuckDBPyConnection, scale: Scale, period: Period) -> None:
    draw_opportunity_times(con, scale, period)
    assign_owners_and_accounts(con, scale)
    plan_deal_paths(con, period)
    settle_opportunities(con, period)
    con.execute("DROP TABLE opp_created; DROP TABLE opp_owned; DROP TABLE opp_plan")


def draw_opportunity_times(con: duckdb.DuckDBPyConnection, scale: Scale, period: Period) -> None:
    """Creation times at a growing rate, on business days between 08:00 and 18:00.

    Slot i of n holds the i-th quantile of the creation curve, so times grow
    with i; deals are numbered by creation time.
    """
    n = scale.opportunities
    con.execute(f"""
        CREATE TABLE opp_created AS
        WITH slots AS (
            SELECT i, grow((i - 1 + u('opp-created', i)) / {n}) * {period.days} AS pos
            FROM range(1, {n} + 1) t(i)
        ), placed AS (
            SELECT i, pos - floor(pos) AS day_frac,
                floor(pos)::INTEGER + CASE WHEN u('opp-weekend', i) < 0.85 THEN
                    CASE dayofweek({sql_date(period.start)} + floor(pos)::INTEGER)
                    WHEN 6 THEN 2 WHEN 0 THEN 1 ELSE 0 END ELSE 0 END AS day_idx
            FROM slots
        ), timed AS (
            SELECT i, {sql_ts(period.start)} + to_days(least(day_idx, {period.days - 1}))
                + secs(28800 + day_frac * 36000) AS created_at
            FROM placed
        )
        SELECT row_number() OVER (ORDER BY created_at, i) AS opp_n, created_at FROM timed
    """)


def assign_owners_and_accounts(con: duckdb.DuckDBPyConnection, scale: Scale) -> None:
    """Owner among the reps employed that day (1.2% go to the team manager).

    A share of the deals opens a new account (numbered after the accounts that
    predate the period); the others pick uniformly among the accounts that
    exist when the deal is created.
    """
    other_type = weighted_case(
        "u('opp-type', opp_n)",
        [("new_business", 0.2), ("expansion", 0.55), ("renewal", 0.25)],
    )
    con.execute(f"""
        CREATE TABLE opp_owned AS
        WITH owned AS (
            SELECT o.opp_n, o.created_at, pick(a.reps, 'opp-owner', o.opp_n) AS rep_n,
                u('opp-new-account', o.opp_n) < {scale.new_account_share} AS creates_account
            FROM opp_created o JOIN active_reps a ON a.day = o.created_at::DATE
        ), staffed AS (
            SELECT w.*, r.team_n, u('opp-manager', w.opp_n) < 0.012 AS by_manager,
                CASE WHEN by_manager THEN m.manager_n ELSE w.rep_n END AS owner0,
                CASE WHEN by_manager THEN 1.1 ELSE r.skill END AS skill,
                coalesce(sum(creates_account::INTEGER) OVER (ORDER BY w.opp_n
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS accounts_before
            FROM owned w JOIN users_raw r ON r.user_n = w.rep_n
            JOIN team_managers m ON m.team_n = r.team_n
        )
        SELECT opp_n, created_at, owner0, team_n, skill, creates_account,
            CASE WHEN creates_account THEN {scale.old_accounts} + accounts_before + 1
                ELSE 1 + floor(u('opp-account', opp_n) * ({scale.old_accounts} + accounts_before))
                    ::BIGINT END AS account_n,
            CASE WHEN creates_account THEN 'new_business' ELSE {other_type} END
                AS opportunity_type
        FROM staffed
    """)


def plan_deal_paths(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """Outcome, planned close and the planned stage path with its entry times.

    The close is pulled in to the last days of its quarter for 35% of the won
    and 15% of the lost deals. Path: stages 1..reach (10% skip qualification),
    18% go back one stage once, then closed_won (5) or closed_lost (6). Entry
    times spread between creation and the close day; the closed stage is
    entered on the close day during business hours.
    """
    lost_reach = weighted_case(
        "u('opp-reach', opp_n)", [("1", 3), ("2", 3), ("3", 2.5), ("4", 1.5)]
    )
    con.execute(f"""
        CREATE TABLE opp_plan AS
        WITH drawn AS (
            SELECT o.*, t.deal_size,
                u('opp-won', opp_n) < least(0.92, t.win_rate * o.skill * CASE opportunity_type
                    WHEN 'expansion' THEN 1.3 WHEN 'renewal' THEN 1.8 ELSE 1 END) AS won,
                creates_account AND u('opp-lead', opp_n) < 0.85
                    OR NOT creates_account AND u('opp-lead', opp_n)
                        < CASE opportunity_type WHEN 'new_business' THEN 0.5 ELSE 0.1 END
                    AS from_lead,
                t.cycle_days * exp(0.55 * gauss('opp-cycle', opp_n))
                    * CASE WHEN won THEN 1 ELSE 0.7 END
                    * CASE WHEN opportunity_type = 'renewal' THEN 0.6 ELSE 1 END AS cycle
            FROM opp_owned o JOIN teams_raw t USING (team_n)
        ), uncommitted AS (
            SELECT *, created_at::DATE + greatest(1, ceil(cycle))::INTEGER AS natural_close
            FROM drawn
        ), closing AS (
            SELECT *, CASE WHEN u('opp-push', opp_n) < CASE WHEN won THEN 0.35 ELSE 0.15 END
                THEN greatest(natural_close,
                    (date_trunc('quarter', natural_close) + INTERVAL 3 MONTH)::DATE - 1
                        - floor(8 * u('opp-push-day', opp_n) ** 2)::INTEGER)
                ELSE natural_close END AS close_day,
                CASE WHEN won THEN CASE WHEN u('opp-reach', opp_n) < 0.9 THEN 4 ELSE 3 END
                    ELSE ({lost_reach})::INTEGER END AS reach
            FROM uncommitted
        ), forward AS (
            SELECT *, close_day::TIMESTAMP + secs(32400 + 32400 * u('opp-close-time', opp_n))
                    AS close_ts,
                list_filter(range(1, reach + 1), lambda s: NOT (s = 2 AND reach >= 3
                    AND u('opp-skip', opp_n) < 0.1)) AS steps
            FROM closing
        ), pathed AS (
            SELECT *, CASE WHEN reach >= 3 AND u('opp-back', opp_n) < 0.18 THEN
                steps[1:back_at] || [steps[back_at - 1]] || steps[back_at:]
                ELSE steps END || [CASE WHEN won THEN 5 ELSE 6 END] AS path
            FROM (SELECT *, 2 + floor(u('opp-back-at', opp_n) * (len(steps) - 1))::INTEGER
                AS back_at FROM forward)
        )
        SELECT * EXCLUDE (steps, back_at, cycle, natural_close),
            list_transform(path, lambda s, j: CASE
                WHEN j = 1 THEN created_at
                WHEN j = len(path) THEN close_ts
                ELSE created_at + secs(date_diff('second', created_at, close_day::TIMESTAMP)
                    * (j - 1 + 0.8 * (u2('opp-step', opp_n, j) - 0.5)) / (len(path) - 1))
                END) AS times
        FROM pathed
    """)


def settle_opportunities(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """What the export shows: the part of each path before the period's end.

    Amounts are NULL for half of the open deals still in stage 1-2 and for 12%
    of the lost ones. A deal whose owner has left before its close (or before
    the export, if open) belongs to a teammate employed on that day.
    """
    end = sql_ts(period.end)
    last_day = sql_date(period.end.date() - timedelta(1))
    con.execute(f"""
        CREATE TABLE opps AS
        WITH seen AS (
            SELECT *, len(list_filter(times, lambda t: t < {end})) AS seen_count
            FROM opp_plan
        ), current AS (
            SELECT *, path[1:seen_count] AS seen_path, times[1:seen_count] AS seen_times,
                path[seen_count] AS stage_order, path[seen_count] >= 5 AS is_closed,
                path[seen_count] = 5 AS is_won
            FROM seen
        ), valued AS (
            SELECT *, CASE WHEN NOT is_closed AND stage_order <= 2
                    AND u('opp-amount-null', opp_n) < 0.5 THEN NULL
                WHEN stage_order = 6 AND u('opp-amount-null', opp_n) < 0.12 THEN NULL
                WHEN u('opp-cents', opp_n) < 0.8 THEN round(raw_amount, -1)
                ELSE round(raw_amount, 2) END::DECIMAL(18,2) AS amount,
                CASE WHEN is_closed THEN close_day ELSE {last_day} END AS owner_day
            FROM (SELECT *, deal_size * exp(0.6 * gauss('opp-amount', opp_n))
                * CASE opportunity_type WHEN 'expansion' THEN 0.45 WHEN 'renewal' THEN 0.8
                    ELSE 1 END AS raw_amount FROM current)
        )
        SELECT v.opp_n, v.account_n, v.creates_account, v.owner0, v.team_n,
            coalesce(CASE WHEN r.terminated_at < v.owner_day
                THEN pick(a.reps, 'opp-reassign', v.opp_n) END, v.owner0) AS owner_n,
            r.terminated_at AS owner0_left, v.opportunity_type, v.from_lead, v.amount,
            v.stage_order, v.is_closed, v.is_won, v.created_at,
            CASE WHEN v.is_closed THEN v.close_day END AS close_date,
            CASE WHEN v.is_closed THEN v.close_ts ELSE {end} END AS work_until,
            v.seen_path, v.seen_times
        FROM valued v JOIN users_raw r ON r.user_n = v.owner0
        LEFT JOIN active_team_reps a ON a.team_n = v.team_n AND a.day = v.owner_day
    """)


def create_stage_history(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE TABLE history AS
        SELECT opp_n, unnest(seen_path) AS stage_order, unnest(seen_times) AS entered_at
        FROM opps;
        ALTER TABLE opps DROP COLUMN seen_path;
        ALTER TABLE opps DROP COLUMN seen_times;
    """)


def create_accounts(con: duckdb.DuckDBPyConnection, scale: Scale, period: Period) -> None:
    """Accounts from before the period (8% without owner), then one per deal that opens one."""
    old = scale.old_accounts
    con.execute(f"""
        CREATE TABLE accounts_raw AS
        SELECT n AS account_n,
            {sql_ts(period.start)} - secs(86400 * 1460 * ({old} - n + u('account-created', n))
                / {old}) AS created_at,
            CASE WHEN u('account-owner-null', n) < 0.08 THEN NULL
                ELSE pick((SELECT list(user_n ORDER BY user_n) FROM users_raw
                    WHERE role = 'rep'), 'account-owner', n) END AS owner_n
        FROM range(1, {old} + 1) t(n)
        UNION ALL
        SELECT account_n, created_at, owner0 FROM opps WHERE creates_account
    """)


def create_leads(con: duckdb.DuckDBPyConnection, scale: Scale, period: Period) -> None:
    """Converted leads (one per deal from a lead) and leads that did not convert.

    A converted lead arrived 1-45 days before its deal, mostly passed MQL and
    SQL on the way, and converted when the deal was created. The others arrive
    at a growing rate: 42% become MQL, 40% of those SQL, then they are
    qualified or disqualified, worked, nurtured, or still new.
    """
    start, end = sql_ts(period.start), sql_ts(period.end)
    unconverted = max(0, scale.leads - row_count(con, "opps WHERE from_lead"))
    sources: list[tuple[str | None, float]] = [
        ("web", 35), ("referral", 15), ("event", 15), ("outbound", 25), ("partner", 7), (None, 3)
    ]  # fmt: skip
    open_status = weighted_case(
        "u('lead-status', src_n)", [("working", 35), ("nurturing", 40), ("disqualified", 25)]
    )
    cold_status = weighted_case(
        "u('lead-status', src_n)",
        [("disqualified", 45), ("nurturing", 30), ("working", 15), ("new", 10)],
    )
    con.execute(f"""
        CREATE TABLE lead_draft AS
        WITH converted AS (
            SELECT opp_n AS src_n, owner0 AS owner_n, account_n, opp_n, created_at AS converted_at,
                least((1 + 44 * u('clead-lag', opp_n) ** 2) * 86400,
                    0.9 * date_diff('second', {start}, created_at)) AS lag_s
            FROM opps WHERE from_lead
        ), converted_funnel AS (
            SELECT *, converted_at - secs(lag_s) AS created_at,
                CASE WHEN u('clead-mql', src_n) < 0.8
                    THEN converted_at - secs(lag_s * (1 - 0.3 * u('clead-mql-at', src_n))) END
                    AS mql_at
            FROM converted
        ), fresh AS (
            SELECT j AS src_n, {start} + secs(grow((j - 1 + u('lead-created', j)) / {unconverted})
                * {period.seconds}) AS created_at
            FROM range(1, {unconverted} + 1) t(j)
        ), fresh_funnel AS (
            SELECT f.*, pick(a.reps, 'lead-owner', f.src_n) AS owner_n,
                CASE WHEN u('lead-mql', src_n) < 0.42 THEN f.created_at
                    + secs(86400 * (0.2 + 10 * u('lead-mql-at', src_n) ** 2)) END AS mql_raw
            FROM fresh f JOIN active_reps a ON a.day = f.created_at::DATE
        ), fresh_sql AS (
            SELECT *, CASE WHEN mql_raw < {end} THEN mql_raw END AS mql_at,
                CASE WHEN mql_raw < {end} AND u('lead-sql', src_n) < 0.4 THEN mql_raw
                    + secs(86400 * (1 + 20 * u('lead-sql-at', src_n) ** 2)) END AS sql_raw
            FROM fresh_funnel
        )
        SELECT 1 AS src, src_n, created_at, owner_n,
            {weighted_case("u('clead-source', src_n)", sources)} AS lead_source,
            'converted' AS status, mql_at,
            CASE WHEN u('clead-sql', src_n) < 0.9 THEN coalesce(mql_at, created_at)
                + secs(date_diff('second', coalesce(mql_at, created_at), converted_at)
                    * (0.3 + 0.6 * u('clead-sql-at', src_n))) END AS sql_at,
            converted_at, account_n AS converted_account_n, opp_n AS converted_opp_n
        FROM converted_funnel
        UNION ALL
        SELECT 2, src_n, created_at, owner_n, {weighted_case("u('lead-source', src_n)", sources)},
            CASE WHEN sql_raw < {end} THEN
                    CASE WHEN u('lead-disqualified', src_n) < 0.35 THEN 'disqualified'
                    ELSE 'qualified' END
                WHEN mql_at IS NOT NULL THEN {open_status}
                WHEN created_at > {end} - INTERVAL 14 DAY THEN 'new'
                ELSE {cold_status} END,
            mql_at, CASE WHEN sql_raw < {end} THEN sql_raw END, NULL, NULL, NULL
        FROM fresh_sql;
        CREATE TABLE leads_raw AS
        SELECT row_number() OVER (ORDER BY created_at, src, src_n) AS lead_n, *
        FROM lead_draft;
        DROP TABLE lead_draft;
    """)


def create_activities(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """Lead contact attempts, touches before a lead existed, deal work, account check-ins.

    Response to a lead: 2% at once, 30% within the hour, 43% within 1-8 hours,
    the rest after half a day to a few days; follow-ups every two days or so.
    Deal work spreads over the deal's open life, more of it on longer deals;
    6% of meetings and demos are done by the team manager. Nobody works after
    their last day. Activities are numbered by time.
    """
    start, end = sql_ts(period.start), sql_ts(period.end)
    response = weighted_case(
        "u('lead-response', lead_n)", [("0", 2), ("1", 30), ("2", 43), ("3", 25)]
    )
    con.execute(f"""
        CREATE TABLE activities_raw AS
        WITH contacted AS (
            SELECT lead_n, created_at, owner_n, {response} AS speed,
                1 + floor(3.4 * u('lead-touches', lead_n) ** 2)::INTEGER AS touches
            FROM leads_raw
            WHERE src = 1 OR u('lead-contacted', lead_n)
                < CASE status WHEN 'new' THEN 0.5 ELSE 0.92 END
        ), lead_touches AS (
            SELECT *, unnest(range(touches)) AS k,
                CASE speed WHEN '0' THEN 0
                    WHEN '1' THEN 3600 * u('lead-response-at', lead_n)
                    WHEN '2' THEN 3600 * (1 + 7 * u('lead-response-at', lead_n))
                    ELSE 86400 * (0.5 + 3 * u('lead-response-at', lead_n)) END AS response_s
            FROM contacted
        ), deal_work AS (
            SELECT o.opp_n, o.owner0, o.owner_n, o.owner0_left, o.account_n, o.created_at,
                m.manager_n, l.lead_n, date_diff('second', o.created_at, o.work_until) AS span_s,
                least(40, 1 + floor((1 + date_diff('second', o.created_at, o.work_until)
                    / 86400 * 0.1) * (0.5 + u('opp-touches', o.opp_n)))::INTEGER) AS touches
            FROM opps o JOIN team_managers m ON m.team_n = o.team_n
            LEFT JOIN leads_raw l ON l.converted_opp_n = o.opp_n
        ), deal_touches AS (
            SELECT *, unnest(range(touches)) AS k FROM deal_work
        ), deal_rows AS (
            SELECT *, created_at + secs(span_s * (k + u2('opp-touch-at', opp_n, k)) / touches)
                    AS occurred_at,
                {activity_kind("u2('opp-touch-kind', opp_n, k)", "deal")} AS kind
            FROM deal_touches
        ), checkins AS (
            SELECT account_n, owner_n, unnest(range(floor(3 * u('checkins', account_n))::INTEGER))
                AS k
            FROM accounts_raw WHERE owner_n IS NOT NULL AND created_at < {start}
        ), touches AS (
        SELECT 1 AS src, lead_n AS parent, k, owner_n, lead_n, NULL::BIGINT AS opp_n,
            NULL::BIGINT AS account_n,
            created_at + secs(response_s + CASE WHEN k = 0 THEN 0
                ELSE 86400 * (2 * k - 1 + u2('lead-gap', lead_n, k)) END) AS occurred_at,
            {activity_kind("u2('lead-touch-kind', lead_n, k)", "lead")} AS kind
        FROM lead_touches
        UNION ALL
        SELECT 2, lead_n, 0, owner_n, lead_n, NULL, NULL,
            created_at - secs(3600 * (1 + 119 * u('lead-early-at', lead_n))),
            {activity_kind("u('lead-early-kind', lead_n)", "lead")}
        FROM leads_raw
        WHERE u('lead-early', lead_n) < 0.04 AND created_at >= {start} + INTERVAL 6 DAY
        UNION ALL
        SELECT 3, opp_n, k,
            CASE WHEN kind IN ('meeting', 'demo') AND u2('opp-touch-manager', opp_n, k) < 0.06
                    THEN manager_n
                WHEN occurred_at::DATE > owner0_left THEN owner_n ELSE owner0 END,
            CASE WHEN k = 0 THEN lead_n END, opp_n, account_n, occurred_at, kind
        FROM deal_rows
        UNION ALL
        SELECT 4, account_n, k, owner_n, NULL, NULL, account_n,
            {start} + secs({period.seconds} * u2('checkin-at', account_n, k)),
            {activity_kind("u2('checkin-kind', account_n, k)", "account")}
        FROM checkins
        )
        SELECT row_number() OVER (ORDER BY occurred_at, src, parent, k) AS activity_n,
            t.owner_n, activity_type_text(kind, u3('activity-style', src, parent, k),
                u3('activity-other', src, parent, k)) AS activity_type,
            occurred_at, lead_n, opp_n, account_n
        FROM touches t JOIN users_raw r ON r.user_n = t.owner_n
        WHERE occurred_at < {end}
            AND (r.terminated_at IS NULL OR occurred_at < r.terminated_at + 1);
    """)


def create_subscriptions(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """60% of the older accounts were customers before the period; every won
    new_business or expansion deal starts a subscription within two weeks of its
    close. Lifetimes are exponential (mean three years); 40% of the churns take
    effect on the first day of the next month."""
    first_day, last_day = period.start.date(), period.end.date() - timedelta(1)
    con.execute(f"""
        CREATE TABLE subscriptions_raw AS
        WITH started AS (
            SELECT 1 AS src, account_n AS src_n, account_n,
                least(created_at::DATE + floor(60 * u('sub-old-start', account_n))::INTEGER,
                    {sql_date(first_day - timedelta(1))}) AS started_at,
                round(200 + 3800 * u('sub-old-mrr', account_n) ** 2, 2) AS mrr
            FROM accounts_raw
            WHERE created_at < {sql_ts(period.start)} AND u('sub-old', account_n) < 0.6
            UNION ALL
            SELECT 2, opp_n, account_n,
                least(close_date + floor(15 * u('sub-won-start', opp_n))::INTEGER,
                    {sql_date(last_day)}),
                CASE WHEN u('sub-mrr-null', opp_n) >= 0.03 THEN round(amount / 12, 2) END
            FROM opps WHERE is_won AND opportunity_type IN ('new_business', 'expansion')
        ), lived AS (
            SELECT *, started_at + (30 + ceil(-ln(1 - u2('sub-life', src, src_n))
                * 36 * 30.44))::INTEGER AS natural_end
            FROM started
        ), ended AS (
            SELECT *, CASE WHEN u2('sub-month-start', src, src_n) < 0.4
                THEN (date_trunc('month', natural_end) + INTERVAL 1 MONTH)::DATE
                ELSE natural_end END AS end_day
            FROM lived
        )
        SELECT row_number() OVER (ORDER BY started_at, src, src_n) AS sub_n, account_n,
            started_at, CASE WHEN end_day <= {sql_date(last_day)} THEN end_day END AS ended_at,
            mrr::DECIMAL(18,2) AS mrr
        FROM ended
    """)


def create_quotas(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """A quota for every month a rep is employed, except the month they start and
    4% random gaps, around the team's average won amount per rep and month."""
    months = (period.end.year - period.start.year) * 12 + period.end.month - period.start.month
    con.execute(f"""
        CREATE TABLE quotas_raw AS
        WITH months AS (
            SELECT ({sql_date(period.start)} + to_months(m::INTEGER))::DATE AS month
            FROM range({months}) t(m)
        ), rep_months AS (
            SELECT r.user_n, r.team_n, r.hired_at, m.month
            FROM users_raw r JOIN months m ON r.role = 'rep'
                AND r.hired_at < (m.month + INTERVAL 1 MONTH)::DATE
                AND (r.terminated_at IS NULL OR r.terminated_at >= m.month)
        ), team_won AS (
            SELECT r.team_n, sum(o.amount) AS won
            FROM opps o JOIN users_raw r ON r.user_n = o.owner_n
            WHERE o.is_won AND r.role = 'rep' GROUP BY r.team_n
        ), team_rate AS (
            SELECT rm.team_n, coalesce(max(w.won), 0)::DOUBLE / count(*) AS per_rep_month
            FROM rep_months rm LEFT JOIN team_won w USING (team_n) GROUP BY rm.team_n
        )
        SELECT rm.user_n, rm.month,
            greatest(1000, round(tr.per_rep_month
                * (0.9 + 0.4 * u2('quota', rm.user_n, year(rm.month) * 12 + month(rm.month)))
                / 500) * 500)::DECIMAL(18,2) AS quota_amount
        FROM rep_months rm JOIN team_rate tr USING (team_n)
        WHERE date_trunc('month', rm.hired_at)::DATE <> rm.month
            AND u2('quota-gap', rm.user_n, year(rm.month) * 12 + month(rm.month)) >= 0.04
    """)


def id_width(count: int, minimum: int = 4) -> int:
    return max(minimum, len(str(count)))


def create_export_views(con: duckdb.DuckDBPyConnection, scale: Scale) -> None:
    """`out_<table>` views: the contract's columns, with text ids."""

    widths = {
        "teams": id_width(scale.teams, 2),
        "users": id_width(scale.users, 3),
        "accounts": id_width(scale.accounts),
        "leads": id_width(scale.leads),
        "opportunities": id_width(scale.opportunities),
        "activities": id_width(scale.opportunities * 10, 5),
        "subscriptions": id_width(scale.accounts),
    }

    def ident(table: str, column: str) -> str:
        return f"fmt_id('{ID_PREFIXES[table]}', {column}, {widths[table]})"

    team, user, account = (partial(ident, t) for t in ("teams", "users", "accounts"))
    lead, opp = partial(ident, "leads"), partial(ident, "opportunities")
    activity = ident("activities", "activity_n")
    subscription = ident("subscriptions", "sub_n")
    con.execute(f"""
        CREATE VIEW out_teams AS
        SELECT {team("team_n")} AS team_id, team_name, region FROM teams_raw;
        CREATE VIEW out_users AS
        SELECT {user("user_n")} AS user_id, full_name, email, role, {team("team_n")} AS team_id,
            {user("manager_n")} AS manager_id, hired_at, terminated_at
        FROM users_raw;
        CREATE VIEW out_accounts AS
        SELECT {account("account_n")} AS account_id, account_name(account_n) AS account_name,
            industry(account_n) AS industry, {user("owner_n")} AS owner_id, created_at
        FROM accounts_raw;
        CREATE VIEW out_leads AS
        SELECT {lead("lead_n")} AS lead_id, created_at, {user("owner_n")} AS owner_id,
            lead_source, status, mql_at, sql_at, converted_at,
            {account("converted_account_n")} AS converted_account_id,
            {opp("converted_opp_n")} AS converted_opportunity_id
        FROM leads_raw;
        CREATE VIEW out_pipeline_stages AS SELECT * FROM stages;
        CREATE VIEW out_opportunities AS
        SELECT {opp("o.opp_n")} AS opportunity_id, {account("o.account_n")} AS account_id,
            {user("o.owner_n")} AS owner_id, {lead("l.lead_n")} AS lead_id,
            CASE WHEN u('opp-name-null', o.opp_n) >= 0.02 THEN account_name(o.account_n)
                || ' - ' || pick({sql_list(PRODUCTS)}, 'opp-product', o.opp_n) END
                AS opportunity_name,
            o.opportunity_type, o.amount, s.stage_name, o.is_closed, o.is_won, o.created_at,
            o.close_date
        FROM opps o JOIN stages s USING (stage_order)
        LEFT JOIN leads_raw l ON l.converted_opp_n = o.opp_n;
        CREATE VIEW out_opportunity_stage_history AS
        SELECT {opp("h.opp_n")} AS opportunity_id, s.stage_name, h.entered_at
        FROM history h JOIN stages s USING (stage_order);
        CREATE VIEW out_quotas AS
        SELECT {user("user_n")} AS user_id, month, quota_amount FROM quotas_raw;
        CREATE VIEW out_activities AS
        SELECT {activity} AS activity_id, {user("owner_n")} AS owner_id,
            activity_type, occurred_at,
            {lead("lead_n")} AS lead_id, {opp("opp_n")} AS opportunity_id,
            {account("account_n")} AS account_id
        FROM activities_raw;
        CREATE VIEW out_subscriptions AS
        SELECT {subscription} AS subscription_id, {account("account_n")} AS account_id,
            started_at, ended_at, mrr
        FROM subscriptions_raw;
    """)
