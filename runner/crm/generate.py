"""Deterministic, realistic CRM exports: the input of `kpi build`.

`generate_export` writes one file per table of the raw CRM contract (KPI_SPEC
section 1), `<table>.csv` or `<table>.parquet`, holding exactly the contract's
columns. The data is clean (every key unique, every reference valid, no row the
loader rejects) but shaped like a real sales organisation, so that every KPI has
something to measure.

Data model
----------
* Teams follow profiles with different strengths (win rate, typical deal size,
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

Randomness
----------
The big tables use no generator state. Every draw is a pure function of
(seed, purpose, entity key): `u(purpose, key)` is DuckDB's 64-bit `hash()` of
those values cut to 53 bits and scaled to [0, 1), and `gauss` turns two such
fractions into a normal draw (Box-Muller). A row's values do not depend on the
order or the thread in which rows are computed, so the tables are built by
set-based SQL over `range()` and come out the same on every run. The small
user table uses `random.Random(seed)`. Files are sorted by their key before
writing, so the same arguments give byte-identical files (with the same DuckDB
version: `hash()` is not promised to stay the same across versions).

Appending
---------
`append=True` moves an existing export forward by one to two weeks, starting
one second after its latest timestamp: new leads, new deals (from new leads or
without a lead, on new or existing accounts), stage changes of open deals
(some close), activities, subscriptions of deals won in that window, a few
churned subscriptions and the quotas of a month that starts in it. The
snapshot tables are rewritten in place; the event tables (leads, activities,
opportunity_stage_history) keep their files and get a new part file
`<table>.append-NNNN.<ext>` with the new rows only. The draws of an append are
keyed by the seed and the part number.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb

FORMATS = ("csv", "parquet")

# The raw CRM contract (KPI_SPEC section 1): table -> (column, type) in contract order.
CONTRACT: dict[str, tuple[tuple[str, str], ...]] = {
    "teams": (("team_id", "id"), ("team_name", "text"), ("region", "text")),
    "users": (
        ("user_id", "id"),
        ("full_name", "text"),
        ("email", "text"),
        ("role", "text"),
        ("team_id", "id"),
        ("manager_id", "id"),
        ("hired_at", "date"),
        ("terminated_at", "date"),
    ),
    "accounts": (
        ("account_id", "id"),
        ("account_name", "text"),
        ("industry", "text"),
        ("owner_id", "id"),
        ("created_at", "timestamp"),
    ),
    "leads": (
        ("lead_id", "id"),
        ("created_at", "timestamp"),
        ("owner_id", "id"),
        ("lead_source", "text"),
        ("status", "text"),
        ("mql_at", "timestamp"),
        ("sql_at", "timestamp"),
        ("converted_at", "timestamp"),
        ("converted_account_id", "id"),
        ("converted_opportunity_id", "id"),
    ),
    "pipeline_stages": (
        ("stage_name", "text"),
        ("stage_order", "integer"),
        ("probability", "number"),
        ("is_closed", "bool"),
        ("is_won", "bool"),
    ),
    "opportunities": (
        ("opportunity_id", "id"),
        ("account_id", "id"),
        ("owner_id", "id"),
        ("lead_id", "id"),
        ("opportunity_name", "text"),
        ("opportunity_type", "text"),
        ("amount", "money"),
        ("stage_name", "text"),
        ("is_closed", "bool"),
        ("is_won", "bool"),
        ("created_at", "timestamp"),
        ("close_date", "date"),
    ),
    "opportunity_stage_history": (
        ("opportunity_id", "id"),
        ("stage_name", "text"),
        ("entered_at", "timestamp"),
    ),
    "quotas": (("user_id", "id"), ("month", "date"), ("quota_amount", "money")),
    "activities": (
        ("activity_id", "id"),
        ("owner_id", "id"),
        ("activity_type", "text"),
        ("occurred_at", "timestamp"),
        ("lead_id", "id"),
        ("opportunity_id", "id"),
        ("account_id", "id"),
    ),
    "subscriptions": (
        ("subscription_id", "id"),
        ("account_id", "id"),
        ("started_at", "date"),
        ("ended_at", "date"),
        ("mrr", "money"),
    ),
}

# Tables that only ever gain rows: an append writes their new rows to a part file.
EVENT_TABLES = ("leads", "opportunity_stage_history", "activities")

# Every file is written sorted by these columns.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "teams": ("team_id",),
    "users": ("user_id",),
    "accounts": ("account_id",),
    "leads": ("lead_id",),
    "pipeline_stages": ("stage_order",),
    "opportunities": ("opportunity_id",),
    "opportunity_stage_history": ("opportunity_id", "entered_at", "stage_name"),
    "quotas": ("user_id", "month"),
    "activities": ("activity_id",),
    "subscriptions": ("subscription_id",),
}

# Identifier prefixes: ids are a prefix and a zero-padded number.
ID_PREFIXES = {
    "teams": "T",
    "users": "U",
    "accounts": "A",
    "leads": "L",
    "opportunities": "O",
    "activities": "ACT",
    "subscriptions": "S",
}

# Timestamp columns of which CSV writes a small share as `...T...Z` or `...+01:00`.
OFFSET_COLUMNS = {
    ("leads", "created_at"): "lead_id",
    ("opportunities", "created_at"): "opportunity_id",
    ("activities", "occurred_at"): "activity_id",
}

SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "bool": "BOOLEAN",
    "money": "DECIMAL(18,2)",
    "integer": "INTEGER",
    "number": "DOUBLE",
}

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

FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "David", "Elif", "Farah", "Gustavo", "Hannah", "Ingrid", "James",
    "Kenji", "Lena", "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa", "Samuel", "Tomás",
    "Uma", "Victor", "Wei", "Ximena", "Yusuf", "Zoë", "Aisha", "Björn", "Carmen", "Dmitri",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Bianchi", "Chen", "Dubois", "Eriksen", "Fernández", "García", "Hoffmann",
    "Ito", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yılmaz", "Zimmermann",
    "Novák", "Silva", "Okafor", "Larsen",
)  # fmt: skip
ACCOUNT_WORDS = (
    "Acme", "Blue Harbor", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Helios",
    "Iron Bridge", "Juniper", "Keystone", "Lumen", "Meridian", "Northwind", "Orion", "Pinnacle",
    "Quantum", "Redwood", "Summit", "Tidewater", "Vertex", "Willow", "Zenith", "Nordlicht",
    "Café Lumière", "Sakura", "Andes", '"Big Sky"', "Brightline", "Saint-Étienne",
)  # fmt: skip
ACCOUNT_KINDS = (
    " Labs", " Systems", " Group", " Logistics", " Health", " Foods", " Energy", " Media",
    " Bank", " Retail", " Software", " Partners", " Manufacturing", " Analytics", " Holdings",
)  # fmt: skip
ACCOUNT_LEGAL = (", Inc.", " GmbH", " Ltd", " LLC", " S.A.", " AG", " BV", "", "", "")
INDUSTRIES = (
    "Software", "Manufacturing", "Retail", "Healthcare", "Financial Services", "Logistics",
    "Education", "Media", "Energy", "Public Sector",
)  # fmt: skip
PRODUCTS = ("Platform", "Analytics", "Seats", "Support", "Integration", "Data Add-on")
OTHER_ACTIVITY_TYPES = ("linkedin", "LinkedIn", "sms", "note", "webinar")

# Creation intensity grows linearly by this fraction over the period.
GROWTH = 0.35
# DuckDB spills to a temporary directory beyond this (1M deals peak at about 2 GB).
MEMORY_LIMIT = "2GB"


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


def generate_export(
    out_dir: Path,
    *,
    seed: int = 42,
    opportunities: int = 3000,
    file_format: str = "csv",
    start: date = date(2025, 1, 1),
    months: int = 14,
    append: bool = False,
) -> dict[str, int]:
    """Write a CRM export into out_dir; return rows written per table.

    Without `append`, writes `<table>.<ext>` for every contract table (removing
    part files of an earlier export of the same tables). With `append`, extends
    the export already in out_dir (see the module docstring); the counts are
    then the rows of the rewritten snapshot files and of the new part files.
    """
    out_dir = Path(out_dir)
    check_arguments(seed, opportunities, file_format, start, months)
    with tempfile.TemporaryDirectory(prefix="crm-export-") as spill, duckdb.connect() as con:
        con.execute(f"""
            SET TimeZone = 'UTC';
            SET enable_progress_bar = false;
            SET memory_limit = '{MEMORY_LIMIT}';
            SET temp_directory = {sql_str(spill)};
        """)
        if append:
            return append_export(con, out_dir, seed, file_format)
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_files(out_dir, file_format)
        period = Period(datetime.combine(start, datetime.min.time()), add_months(start, months))
        build_base_export(con, plan_scale(opportunities), period, seed)
        return {
            table: write_table(con, f"out_{table}", table, table_path(out_dir, table, file_format))
            for table in CONTRACT
        }


def check_arguments(
    seed: int, opportunities: int, file_format: str, start: date, months: int
) -> None:
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(FORMATS)}, not {file_format!r}")
    if opportunities < 10:
        raise ValueError("opportunities must be at least 10")
    if months < 3:
        raise ValueError("months must be at least 3")
    if start.day != 1:
        raise ValueError("start must be the first day of a month")
    if not isinstance(seed, int):
        raise ValueError("seed must be an integer")


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


def table_path(out_dir: Path, table: str, file_format: str, part: int | None = None) -> Path:
    suffix = f".append-{part:04d}" if part else ""
    return out_dir / f"{table}{suffix}.{file_format}"


def remove_stale_files(out_dir: Path, file_format: str) -> None:
    """Remove part files and other-format files of the contract tables."""
    other = [ext for ext in FORMATS if ext != file_format]
    for table in CONTRACT:
        stale = [out_dir / f"{table}.{ext}" for ext in other]
        for ext in FORMATS:
            stale.extend(out_dir.glob(f"{table}.append-*.{ext}"))
        for path in stale:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- SQL helpers


def row_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return int(row[0]) if row else 0


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(sql_str(v) for v in values) + "]"


def sql_ts(value: datetime) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"


def sql_date(value: date) -> str:
    return f"DATE '{value:%Y-%m-%d}'"


def weighted_case(draw: str, choices: Sequence[tuple[str | None, float]]) -> str:
    """A CASE picking a value with the given weights from a uniform draw."""
    total = sum(weight for _, weight in choices)
    parts, cumulative = [], 0.0
    for value, weight in choices[:-1]:
        cumulative += weight / total
        parts.append(f"WHEN {draw} < {cumulative:.6f} THEN {literal(value)}")
    return f"CASE {' '.join(parts)} ELSE {literal(choices[-1][0])} END"


def literal(value: str | None) -> str:
    return "NULL" if value is None else sql_str(value)


def create_macros(con: duckdb.DuckDBPyConnection, seed: int, salt: str) -> None:
    """Hash-based random draws and the formatting helpers shared by all queries."""
    base_salt = sql_str(f"seed={seed}")
    salt = sql_str(salt)
    others = sql_list(OTHER_ACTIVITY_TYPES)
    con.execute(f"""
        CREATE OR REPLACE MACRO u(purpose, k) AS
            (hash(k, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO u2(purpose, k, j) AS
            (hash(k, j, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO u3(purpose, k, j, i) AS
            (hash(k, j, i, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO gauss(purpose, k) AS sqrt(-2 * ln(1 - u(purpose || '/r', k)))
            * cos(2 * pi() * u(purpose || '/a', k));
        CREATE OR REPLACE MACRO pick(items, purpose, k) AS
            items[1 + floor(u(purpose, k) * len(items))::BIGINT];
        CREATE OR REPLACE MACRO secs(x) AS to_seconds(floor(x)::BIGINT);
        CREATE OR REPLACE MACRO grow(x) AS
            (sqrt(1 + 2 * {GROWTH} * (1 + {GROWTH} / 2) * x) - 1) / {GROWTH};
        CREATE OR REPLACE MACRO fmt_id(prefix, n, width) AS
            prefix || lpad(n::VARCHAR, greatest(width, length(n::VARCHAR))::INTEGER, '0');
        CREATE OR REPLACE MACRO id_number(id) AS regexp_extract(id, '([0-9]+)$', 1)::BIGINT;
        CREATE OR REPLACE MACRO ts_text(ts, key) AS CASE
            WHEN hash(key, 'offset', {base_salt}) % 100 < 2
                THEN strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
            WHEN hash(key, 'offset', {base_salt}) % 100 < 3
                THEN strftime(ts + INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%S+01:00')
            ELSE strftime(ts, '%Y-%m-%d %H:%M:%S') END;
        CREATE OR REPLACE MACRO account_name(k) AS
            pick({sql_list(ACCOUNT_WORDS)}, 'account-word', k)
            || pick({sql_list(ACCOUNT_KINDS)}, 'account-kind', k)
            || pick({sql_list(ACCOUNT_LEGAL)}, 'account-legal', k);
        CREATE OR REPLACE MACRO industry(k) AS CASE WHEN u('industry-null', k) < 0.05 THEN NULL
            ELSE pick({sql_list(INDUSTRIES)}, 'industry', k) END;
        CREATE OR REPLACE MACRO activity_type_text(kind, style, other) AS CASE
            WHEN kind = 'other' THEN {others}[1 + floor(other * len({others}))::INTEGER]
            WHEN style < 0.72 THEN kind
            WHEN style < 0.84 THEN upper(kind[1]) || kind[2:]
            WHEN style < 0.90 THEN ' ' || upper(kind)
            WHEN style < 0.95 THEN kind || ' '
            WHEN style < 0.98 THEN upper(kind)
            ELSE chr(9) || kind END;
    """)


def activity_kind(draw: str, source: str) -> str:
    """The canonical activity type of a lead, deal or account touch."""
    weights = {
        "lead": [("call", 45), ("email", 45), ("meeting", 4), ("other", 6)],
        "deal": [("call", 28), ("email", 32), ("meeting", 20), ("demo", 16), ("other", 4)],
        "account": [("meeting", 60), ("call", 30), ("email", 10)],
    }[source]
    return weighted_case(draw, [(kind, float(weight)) for kind, weight in weights])


# --------------------------------------------------------------------------- base export


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


# --------------------------------------------------------------------------- writing


def write_table(con: duckdb.DuckDBPyConnection, relation: str, table: str, path: Path) -> int:
    """Write one relation as a contract file, sorted by its key; return the row count.

    The file is written next to its destination and renamed into place.
    """
    file_format = path.suffix.lstrip(".")
    render = render_csv_column if file_format == "csv" else render_parquet_column
    columns = ", ".join(render(table, column, kind) for column, kind in CONTRACT[table])
    order = ", ".join(f"src.{column}" for column in SORT_KEYS[table])
    options = "FORMAT csv, HEADER true, DELIMITER ','" if file_format == "csv" else "FORMAT parquet"
    temporary = path.with_name(f".{path.name}.tmp")
    query = f"SELECT {columns} FROM {relation} AS src ORDER BY {order}"
    count = con.execute(f"COPY ({query}) TO {sql_str(str(temporary))} ({options})").fetchone()
    os.replace(temporary, path)
    return int(count[0]) if count else 0


def render_csv_column(table: str, column: str, kind: str) -> str:
    """Text as the contract writes it (timestamps `YYYY-MM-DD HH:MM:SS` UTC)."""
    value = f"src.{column}"
    if (table, column) in OFFSET_COLUMNS:
        rendered = f"ts_text({value}, src.{OFFSET_COLUMNS[table, column]})"
    elif kind == "timestamp":
        rendered = f"strftime({value}, '%Y-%m-%d %H:%M:%S')"
    elif kind == "date":
        rendered = f"strftime({value}, '%Y-%m-%d')"
    elif kind == "bool":
        rendered = f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' END"
    else:
        rendered = f"CAST({value} AS {SQL_TYPES[kind]})::VARCHAR"
    return f"{rendered} AS {column}"


def render_parquet_column(table: str, column: str, kind: str) -> str:
    return f"CAST(src.{column} AS {SQL_TYPES[kind]}) AS {column}"


# --------------------------------------------------------------------------- appending


def append_export(
    con: duckdb.DuckDBPyConnection, out_dir: Path, seed: int, file_format: str
) -> dict[str, int]:
    """Extend the export in out_dir by one to two weeks (see the module docstring)."""
    part = next_part_number(out_dir, file_format)
    load_export(con, out_dir, file_format)
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


def next_part_number(out_dir: Path, file_format: str) -> int:
    numbers = [0]
    for table in EVENT_TABLES:
        for path in out_dir.glob(f"{table}.append-*.{file_format}"):
            match = re.fullmatch(rf"{table}\.append-(\d+)\.{file_format}", path.name)
            if match:
                numbers.append(int(match.group(1)))
    return max(numbers) + 1


def export_files(out_dir: Path, table: str, file_format: str) -> list[Path]:
    """The base file of a table and, for event tables, its part files in order."""
    base = table_path(out_dir, table, file_format)
    if not base.is_file():
        raise FileNotFoundError(f"cannot append: {base} does not exist")
    parts = sorted(out_dir.glob(f"{table}.append-*.{file_format}")) if table in EVENT_TABLES else []
    return [base, *parts]


def load_export(con: duckdb.DuckDBPyConnection, out_dir: Path, file_format: str) -> None:
    """Read every table of the export into `cur_<table>`, typed by the contract."""
    for table, columns in CONTRACT.items():
        files = sql_list(str(path) for path in export_files(out_dir, table, file_format))
        if file_format == "csv":
            source = (
                f"read_csv({files}, header = true, all_varchar = true, delim = ',',"
                " quote = '\"', escape = '\"', union_by_name = true)"
            )
        else:
            source = f"read_parquet({files}, union_by_name = true)"
        typed = ", ".join(typed_column(column, kind) for column, kind in columns)
        con.execute(f"CREATE TABLE cur_{table} AS SELECT {typed} FROM {source}")


def typed_column(column: str, kind: str) -> str:
    if kind == "timestamp":
        return f"CAST(CAST({column} AS TIMESTAMPTZ) AS TIMESTAMP) AS {column}"
    return f"CAST({column} AS {SQL_TYPES[kind]}) AS {column}"


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
        raise ValueError("cannot append to an export without any timestamp")
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
