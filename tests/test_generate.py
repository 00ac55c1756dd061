"""The CRM export generator: contract, integrity, realism, determinism, appends."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from runner.crm.export_contract import CONTRACT, EVENT_TABLES
from runner.crm.generate import generate_export
from runner.errors import ProjectError
from runner.raw_contract import SQL_TYPES

ROOT = Path(__file__).resolve().parents[1]
SOURCES_YML = ROOT / "models" / "staging" / "crm" / "_crm__sources.yml"
DEMO_EXPORT = ROOT / "runner" / "crm" / "demo_export"

START, END = date(2025, 1, 1), date(2026, 3, 1)

PRIMARY_KEYS = {
    "teams": ("team_id",),
    "users": ("user_id",),
    "accounts": ("account_id",),
    "leads": ("lead_id",),
    "pipeline_stages": ("stage_name",),
    "opportunities": ("opportunity_id",),
    "opportunity_stage_history": ("opportunity_id", "stage_name", "entered_at"),
    "quotas": ("user_id", "month"),
    "activities": ("activity_id",),
    "subscriptions": ("subscription_id",),
}

# (table, column, referenced table, referenced column)
REFERENCES = (
    ("users", "team_id", "teams", "team_id"),
    ("users", "manager_id", "users", "user_id"),
    ("accounts", "owner_id", "users", "user_id"),
    ("leads", "owner_id", "users", "user_id"),
    ("leads", "converted_account_id", "accounts", "account_id"),
    ("leads", "converted_opportunity_id", "opportunities", "opportunity_id"),
    ("opportunities", "account_id", "accounts", "account_id"),
    ("opportunities", "owner_id", "users", "user_id"),
    ("opportunities", "lead_id", "leads", "lead_id"),
    ("opportunities", "stage_name", "pipeline_stages", "stage_name"),
    ("opportunity_stage_history", "opportunity_id", "opportunities", "opportunity_id"),
    ("opportunity_stage_history", "stage_name", "pipeline_stages", "stage_name"),
    ("quotas", "user_id", "users", "user_id"),
    ("activities", "owner_id", "users", "user_id"),
    ("activities", "lead_id", "leads", "lead_id"),
    ("activities", "opportunity_id", "opportunities", "opportunity_id"),
    ("activities", "account_id", "accounts", "account_id"),
    ("subscriptions", "account_id", "accounts", "account_id"),
)

TIMESTAMP_TEXT = re.compile(
    r"\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d|T\d\d:\d\d:\d\dZ|T\d\d:\d\d:\d\d\+01:00)"
)
OFFSET_TEXT = re.compile(r".*T.*(Z|\+01:00)")
VALUE_TEXT = {
    "date": re.compile(r"\d{4}-\d\d-\d\d"),
    "bool": re.compile(r"true|false"),
    "money": re.compile(r"\d+(\.\d{1,2})?"),
    "integer": re.compile(r"\d+"),
    "number": re.compile(r"\d+(\.\d+)?"),
}


# --------------------------------------------------------------------------- helpers


def export_files(folder: Path, table: str) -> list[Path]:
    files = sorted(folder.glob(f"{table}.*"))
    return sorted(files, key=lambda path: (".append-" in path.name, path.name))


def load(folder: Path, with_file: bool = False) -> duckdb.DuckDBPyConnection:
    """Every table of an export (base file and parts), typed by the contract;
    `with_file` adds the name of the file each row came from."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table, columns in CONTRACT.items():
        files = [str(path) for path in export_files(folder, table)]
        if files[0].endswith(".csv"):
            source = (
                f"read_csv({files}, header = true, all_varchar = true, filename = true,"
                " delim = ',', quote = '\"', escape = '\"')"
            )
        else:
            source = f"read_parquet({files}, filename = true)"
        typed = ", ".join(cast(column, kind) for column, kind in columns)
        extra = ", parse_filename(filename) AS file" if with_file else ""
        con.execute(f"CREATE TABLE {table} AS SELECT {typed}{extra} FROM {source}")
    return con


def cast(column: str, kind: str) -> str:
    sql_type = "TIMESTAMPTZ" if kind == "timestamp" else SQL_TYPES[kind]
    value = f"CAST({column} AS {sql_type})"
    return (
        f"CAST({value} AS TIMESTAMP) AS {column}" if kind == "timestamp" else f"{value} AS {column}"
    )


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def check_keys_unique(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in PRIMARY_KEYS.items():
        columns = ", ".join(key)
        repeated = scalar(
            con,
            f"SELECT count(*) FROM (SELECT {columns} FROM {table} "
            "GROUP BY ALL HAVING count(*) > 1)",
        )
        assert repeated == 0, f"{table} repeats {columns}"


def check_references(con: duckdb.DuckDBPyConnection) -> None:
    for table, column, parent, parent_column in REFERENCES:
        dangling = scalar(
            con,
            f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND {column} NOT IN "
            f"(SELECT {parent_column} FROM {parent})",
        )
        assert dangling == 0, f"{table}.{column} -> {parent}"


def check_loader_rules(con: duckdb.DuckDBPyConnection) -> None:
    """Nothing the loader would reject or a warn-level data test would flag."""
    broken = {
        "bad role": "SELECT count(*) FROM users WHERE role NOT IN ('rep', 'manager')",
        "rep without team": "SELECT count(*) FROM users WHERE role = 'rep' AND team_id IS NULL",
        "closed without close_date": "SELECT count(*) FROM opportunities "
        "WHERE is_closed AND close_date IS NULL",
        "open with close_date": "SELECT count(*) FROM opportunities "
        "WHERE NOT is_closed AND close_date IS NOT NULL",
        "won but not closed": "SELECT count(*) FROM opportunities WHERE is_won AND NOT is_closed",
        "stage flags differ": "SELECT count(*) FROM opportunities o JOIN pipeline_stages s "
        "USING (stage_name) WHERE o.is_closed <> s.is_closed OR o.is_won <> s.is_won",
        "quota month": "SELECT count(*) FROM quotas WHERE day(month) <> 1",
        "subscription ends before it starts": "SELECT count(*) FROM subscriptions "
        "WHERE ended_at <= started_at",
        "lead status": "SELECT count(*) FROM leads WHERE status NOT IN "
        "('new', 'working', 'nurturing', 'qualified', 'disqualified', 'converted')",
        "deal type": "SELECT count(*) FROM opportunities WHERE opportunity_type NOT IN "
        "('new_business', 'expansion', 'renewal')",
        "negative money": "SELECT (SELECT count(*) FROM opportunities WHERE amount < 0) "
        "+ (SELECT count(*) FROM quotas WHERE quota_amount <= 0)",
    }
    for rule, sql in broken.items():
        assert scalar(con, sql) == 0, rule
    for table in CONTRACT:
        for column in required_columns(table):
            missing = scalar(con, f"SELECT count(*) FROM {table} WHERE {column} IS NULL")
            assert missing == 0, f"{table}.{column} is required"


def required_columns(table: str) -> list[str]:
    """Required columns per the sources yml (the contract's `meta.required`)."""
    if not SOURCES_YML.exists():
        return [CONTRACT[table][0][0]]
    tables = yaml.safe_load(SOURCES_YML.read_text(encoding="utf-8"))["sources"][0]["tables"]
    spec = next(t for t in tables if t["name"] == table)
    return [c["name"] for c in spec["columns"] if (c.get("meta") or {}).get("required")]


def check_history_matches_deals(con: duckdb.DuckDBPyConnection) -> None:
    """Each deal's history starts at its creation and ends in its current stage;
    a closed deal's last row is entered on its close_date."""
    mismatched = scalar(
        con,
        """
        WITH ordered AS (
            SELECT h.*, row_number() OVER (PARTITION BY opportunity_id
                ORDER BY entered_at DESC, s.stage_order DESC) AS back,
                min(entered_at) OVER (PARTITION BY opportunity_id) AS first_at
            FROM opportunity_stage_history h JOIN pipeline_stages s USING (stage_name)
        )
        SELECT count(*) FROM opportunities o LEFT JOIN ordered h
            ON h.opportunity_id = o.opportunity_id AND h.back = 1
        WHERE h.stage_name IS DISTINCT FROM o.stage_name
            OR h.first_at <> o.created_at
            OR (o.is_closed AND h.entered_at::DATE <> o.close_date)
        """,
    )
    assert mismatched == 0


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    generate_export(folder, seed=7, opportunities=1200)
    return folder


@pytest.fixture(scope="module")
def db(export: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = load(export)
    yield con
    con.close()


@pytest.fixture(scope="module")
def appended(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small export appended to twice, with the bytes seen after each step."""
    folder = tmp_path_factory.mktemp("appended")
    generate_export(folder, seed=3, opportunities=400)
    steps = [file_bytes(folder)]
    counts = []
    for _ in range(2):
        counts.append(generate_export(folder, seed=3, opportunities=400, append=True))
        steps.append(file_bytes(folder))
    return {"folder": folder, "steps": steps, "counts": counts}


# --------------------------------------------------------------------------- contract


def test_contract_matches_the_sources_yml() -> None:
    # the generator writes exports in one currency: the multi-currency part of
    # the contract (currency_code columns, the optional exchange_rates file;
    # KPI_SPEC section 5) is left out, and nothing else
    tables = yaml.safe_load(SOURCES_YML.read_text(encoding="utf-8"))["sources"][0]["tables"]

    def single_currency(entry: dict) -> bool:
        return not (entry.get("meta") or {}).get("multi_currency")

    from_yml = {
        t["name"]: tuple((c["name"], c["data_type"]) for c in t["columns"] if single_currency(c))
        for t in tables
        if single_currency(t)
    }
    assert from_yml == CONTRACT
    left_out = [
        (t["name"], c["name"]) for t in tables for c in t["columns"] if not single_currency(c)
    ]
    assert left_out == [
        ("opportunities", "currency_code"),
        ("quotas", "currency_code"),
        ("subscriptions", "currency_code"),
    ]
    assert [t["name"] for t in tables if not single_currency(t)] == ["exchange_rates"]


def test_files_hold_exactly_the_contract_columns(export: Path) -> None:
    assert sorted(p.name for p in export.iterdir()) == sorted(f"{t}.csv" for t in CONTRACT)
    for table, columns in CONTRACT.items():
        with (export / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert header == [column for column, _ in columns]


def test_values_are_written_as_the_contract_says(export: Path) -> None:
    offsets = plain = 0
    for table, columns in CONTRACT.items():
        for row in csv_rows(export / f"{table}.csv"):
            for column, kind in columns:
                value = row[column]
                if value == "":
                    continue
                if kind == "timestamp":
                    assert TIMESTAMP_TEXT.fullmatch(value), (table, column, value)
                    offsets += bool(OFFSET_TEXT.fullmatch(value))
                    plain += not OFFSET_TEXT.fullmatch(value)
                elif kind in VALUE_TEXT:
                    assert VALUE_TEXT[kind].fullmatch(value), (table, column, value)
    assert 0 < offsets < 0.05 * plain


def test_text_needing_quotes_round_trips(export: Path) -> None:
    names = [row["account_name"] for row in csv_rows(export / "accounts.csv")]
    assert any("," in name for name in names)
    assert any('"' in name for name in names)
    assert any(not name.isascii() for name in names)


def test_parquet_holds_the_same_rows_as_csv(tmp_path: Path) -> None:
    """Also shows that timestamps written with an offset keep their instant."""
    generate_export(tmp_path / "csv", seed=5, opportunities=300)
    generate_export(tmp_path / "parquet", seed=5, opportunities=300, file_format="parquet")
    from_csv, from_parquet = load(tmp_path / "csv"), load(tmp_path / "parquet")
    for table in CONTRACT:
        assert from_csv.sql(f"SELECT * FROM {table}").fetchall() == (
            from_parquet.sql(f"SELECT * FROM {table}").fetchall()
        ), table
    # Parquet columns carry the contract's own types (money DECIMAL(18,4), integer BIGINT)
    for table, columns in CONTRACT.items():
        path = tmp_path / "parquet" / f"{table}.parquet"
        types = duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
        assert [(name, kind) for name, kind, *_ in types] == [
            (column, SQL_TYPES[kind]) for column, kind in columns
        ], table


# --------------------------------------------------------------------------- integrity


def test_keys_are_unique(db: duckdb.DuckDBPyConnection) -> None:
    check_keys_unique(db)


def test_references_are_valid(db: duckdb.DuckDBPyConnection) -> None:
    check_references(db)


def test_no_row_breaks_a_loader_rule(db: duckdb.DuckDBPyConnection) -> None:
    check_loader_rules(db)


def test_stage_history_matches_each_deal(db: duckdb.DuckDBPyConnection) -> None:
    check_history_matches_deals(db)


def test_events_fall_inside_the_period(db: duckdb.DuckDBPyConnection) -> None:
    bounds = {
        "leads": "created_at",
        "opportunities": "created_at",
        "activities": "occurred_at",
        "opportunity_stage_history": "entered_at",
        "quotas": "month",
    }
    for table, column in bounds.items():
        first, last = db.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()
        assert str(START) <= str(first) and str(last) < str(END), table
    months = scalar(db, "SELECT count(DISTINCT date_trunc('month', close_date)) FROM opportunities")
    assert months == 14


def test_converted_leads_point_at_their_deal(db: duckdb.DuckDBPyConnection) -> None:
    inconsistent = scalar(
        db,
        """
        SELECT count(*) FROM leads l FULL JOIN opportunities o
            ON o.opportunity_id = l.converted_opportunity_id
        WHERE (l.converted_opportunity_id IS NOT NULL OR o.lead_id IS NOT NULL)
            AND (l.lead_id IS DISTINCT FROM o.lead_id
                OR l.converted_account_id IS DISTINCT FROM o.account_id
                OR l.converted_at IS DISTINCT FROM o.created_at
                OR l.status <> 'converted'
                OR l.mql_at < l.created_at OR l.sql_at < l.mql_at OR l.converted_at < l.sql_at)
        """,
    )
    assert inconsistent == 0


# --------------------------------------------------------------------------- realism


def test_teams_differ_in_win_rate_and_deal_size(db: duckdb.DuckDBPyConnection) -> None:
    rates, sizes = zip(
        *db.execute("""
            SELECT avg(o.is_won::INTEGER), avg(o.amount) FILTER (WHERE o.is_won)
            FROM opportunities o JOIN users u ON u.user_id = o.owner_id
            WHERE o.is_closed AND u.role = 'rep' GROUP BY u.team_id
        """).fetchall(),
        strict=True,
    )
    assert len(rates) >= 4
    assert max(rates) > 1.3 * min(rates)
    assert max(sizes) > 3 * min(sizes)


def test_reps_join_and_leave_during_the_period(db: duckdb.DuckDBPyConnection) -> None:
    joined = scalar(db, f"SELECT count(*) FROM users WHERE hired_at > DATE '{START}'")
    left = scalar(
        db,
        f"SELECT count(*) FROM users WHERE terminated_at BETWEEN DATE '{START}' AND DATE '{END}'",
    )
    reps = scalar(db, "SELECT count(*) FROM users WHERE role = 'rep'")
    teams = scalar(db, "SELECT count(*) FROM teams")
    assert joined >= 2 and left >= 2
    assert 20 <= reps <= 40 and 4 <= teams <= 8


def test_deals_close_at_quarter_ends(db: duckdb.DuckDBPyConnection) -> None:
    quarter_end, other = db.execute("""
        SELECT avg(n) FILTER (WHERE month(m) % 3 = 0), avg(n) FILTER (WHERE month(m) % 3 <> 0)
        FROM (SELECT date_trunc('month', close_date) AS m, count(*) AS n
              FROM opportunities WHERE is_closed GROUP BY 1)
    """).fetchone()
    assert quarter_end > 1.4 * other


def test_lost_and_open_deals_some_without_amount(db: duckdb.DuckDBPyConnection) -> None:
    rows = dict(
        db.execute("""
            SELECT CASE WHEN is_won THEN 'won' WHEN is_closed THEN 'lost' ELSE 'open' END,
                count(*) FILTER (WHERE amount IS NULL) * 1.0 / count(*)
            FROM opportunities GROUP BY 1
        """).fetchall()
    )
    assert rows["won"] == 0
    assert 0 < rows["lost"] < 0.3
    assert 0 < rows["open"] < 0.6


def test_some_deals_go_back_a_stage(db: duckdb.DuckDBPyConnection) -> None:
    backwards = scalar(
        db,
        """
        SELECT count(DISTINCT opportunity_id) FROM (
            SELECT opportunity_id, s.stage_order < lag(s.stage_order) OVER (
                PARTITION BY opportunity_id ORDER BY entered_at) AS back
            FROM opportunity_stage_history JOIN pipeline_stages s USING (stage_name)
            WHERE NOT s.is_closed)
        WHERE back
        """,
    )
    assert backwards > 0


def test_some_leads_are_never_contacted(db: duckdb.DuckDBPyConnection) -> None:
    share = scalar(
        db,
        "SELECT avg((lead_id NOT IN (SELECT lead_id FROM activities "
        "WHERE lead_id IS NOT NULL))::INTEGER) FROM leads",
    )
    assert 0.03 < share < 0.2


def test_some_activities_precede_their_lead(db: duckdb.DuckDBPyConnection) -> None:
    early = scalar(
        db,
        "SELECT count(*) FROM activities a JOIN leads l USING (lead_id) "
        "WHERE a.occurred_at < l.created_at",
    )
    assert early > 0


def test_response_times_range_from_minutes_to_days(db: duckdb.DuckDBPyConnection) -> None:
    within_hour, over_day = db.execute("""
        SELECT avg((minutes <= 60)::INTEGER), avg((minutes > 1440)::INTEGER) FROM (
            SELECT date_diff('second', l.created_at, min(a.occurred_at)) / 60 AS minutes
            FROM leads l JOIN activities a ON a.lead_id = l.lead_id
                AND a.occurred_at >= l.created_at
            GROUP BY l.lead_id, l.created_at)
    """).fetchone()
    assert 0.15 < within_hour < 0.6 and 0.05 < over_day < 0.5


def test_managers_own_a_few_deals(db: duckdb.DuckDBPyConnection) -> None:
    share = scalar(
        db,
        "SELECT avg((u.role = 'manager')::INTEGER) FROM opportunities o "
        "JOIN users u ON u.user_id = o.owner_id",
    )
    assert 0 < share < 0.05


def test_some_reps_have_no_quota_in_a_month_they_work(db: duckdb.DuckDBPyConnection) -> None:
    without = scalar(
        db,
        """
        SELECT count(*) FROM users u
        JOIN (SELECT DISTINCT month FROM quotas) m ON u.role = 'rep'
            AND u.hired_at <= m.month + INTERVAL 1 MONTH - INTERVAL 1 DAY
            AND (u.terminated_at IS NULL OR u.terminated_at >= m.month)
        WHERE NOT EXISTS (SELECT 1 FROM quotas q WHERE q.user_id = u.user_id AND q.month = m.month)
        """,
    )
    assert without > 0
    assert scalar(db, "SELECT count(DISTINCT month) FROM quotas") == 14


def test_activity_types_are_typed_by_people(db: duckdb.DuckDBPyConnection) -> None:
    types = [t for (t,) in db.execute("SELECT DISTINCT activity_type FROM activities").fetchall()]
    canonical = {t.strip().lower() for t in types}
    assert {"call", "email", "meeting", "demo"} < canonical
    assert canonical - {"call", "email", "meeting", "demo"}, "no unknown type"
    assert any(t != t.strip() and t.startswith(" ") for t in types)
    assert any(t != t.strip() and t.endswith(" ") for t in types)
    assert any(t.strip() != t.strip().lower() for t in types)


def test_subscriptions_start_and_churn(db: duckdb.DuckDBPyConnection) -> None:
    started, ended, on_first = db.execute(f"""
        SELECT count(*) FILTER (WHERE started_at >= DATE '{START}'),
            count(*) FILTER (WHERE ended_at >= DATE '{START}'),
            count(*) FILTER (WHERE ended_at >= DATE '{START}' AND day(ended_at) = 1)
        FROM subscriptions
    """).fetchone()
    customers_at_start = scalar(
        db,
        f"SELECT count(DISTINCT account_id) FROM subscriptions WHERE started_at < DATE '{START}' "
        f"AND (ended_at IS NULL OR ended_at >= DATE '{START}')",
    )
    assert started > 0 and customers_at_start > 0
    assert 0 < on_first < ended


def test_leads_move_through_the_funnel(db: duckdb.DuckDBPyConnection) -> None:
    leads, mqls, sqls, converted, won = db.execute("""
        SELECT count(*), count(mql_at), count(sql_at), count(converted_opportunity_id),
            count(*) FILTER (WHERE o.is_won)
        FROM leads l LEFT JOIN opportunities o ON o.opportunity_id = l.converted_opportunity_id
    """).fetchone()
    assert leads > mqls > sqls > converted > won > 0


def test_rows_per_opportunity(db: duckdb.DuckDBPyConnection) -> None:
    per_deal = {
        table: scalar(db, f"SELECT count(*) FROM {table}") / 1200
        for table in (
            "leads",
            "activities",
            "opportunity_stage_history",
            "accounts",
            "subscriptions",
        )
    }
    assert 2 <= per_deal["leads"] <= 3
    assert 8 <= per_deal["activities"] <= 12
    assert 3 <= per_deal["opportunity_stage_history"] <= 4.5
    assert 0.2 <= per_deal["accounts"] <= 0.4
    assert 0.2 <= per_deal["subscriptions"] <= 0.4


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_same_arguments_give_identical_files(tmp_path: Path, file_format: str) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    counts = generate_export(first, seed=11, opportunities=200, file_format=file_format)
    assert generate_export(second, seed=11, opportunities=200, file_format=file_format) == counts
    assert file_bytes(first) == file_bytes(second)


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate_export(tmp_path / "a", seed=1, opportunities=200)
    generate_export(tmp_path / "b", seed=2, opportunities=200)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert first["opportunities.csv"] != second["opportunities.csv"]
    assert first["pipeline_stages.csv"] == second["pipeline_stages.csv"]


def test_the_bundled_demo_is_small_and_follows_the_contract() -> None:
    sizes = {p.name: p.stat().st_size for p in DEMO_EXPORT.glob("*.csv")}
    assert set(sizes) == {f"{table}.csv" for table in CONTRACT}
    assert sum(sizes.values()) < 3 * 1024 * 1024


# --------------------------------------------------------------------------- appending


def test_append_adds_part_files_and_keeps_old_event_files(appended: dict[str, Any]) -> None:
    before, after_first, after_second = appended["steps"]
    for table in EVENT_TABLES:
        assert after_second[f"{table}.csv"] == before[f"{table}.csv"]
        assert after_second[f"{table}.append-0001.csv"] == after_first[f"{table}.append-0001.csv"]
        assert f"{table}.append-0002.csv" in after_second
    snapshots = {f"{t}.csv" for t in CONTRACT if t not in EVENT_TABLES}
    assert set(after_second) == set(before) | {
        f"{t}.append-000{n}.csv" for t in EVENT_TABLES for n in (1, 2)
    }
    assert before["opportunities.csv"] != after_first["opportunities.csv"]
    assert snapshots <= set(after_second)


def test_append_adds_about_one_percent(appended: dict[str, Any]) -> None:
    counts = appended["counts"][0]
    assert 5 <= counts["leads"] <= 20  # 1000 leads
    assert counts["opportunities"] == 404
    assert 20 <= counts["activities"] <= 120  # about 4000 activities


def test_new_events_come_after_every_old_one(appended: dict[str, Any]) -> None:
    con = load(appended["folder"], with_file=True)
    spans: dict[str, list[Any]] = {"": [], ".append-0001": [], ".append-0002": []}
    for table in EVENT_TABLES:
        stamps = [c for c, kind in CONTRACT[table] if kind == "timestamp"]
        rows = con.execute(
            f"SELECT file, min(least({', '.join(stamps)})), max(greatest({', '.join(stamps)})) "
            f"FROM {table} GROUP BY file"
        ).fetchall()
        for file, first, last in rows:
            spans[file.removeprefix(table).removesuffix(".csv")].append((first, last))
    assert all(len(found) == len(EVENT_TABLES) for found in spans.values())
    earlier: list[Any] = []
    for found in spans.values():
        if earlier:
            assert min(first for first, _ in found) > max(last for _, last in earlier)
        earlier += found


def test_appended_export_stays_consistent(appended: dict[str, Any]) -> None:
    con = load(appended["folder"])
    check_keys_unique(con)
    check_references(con)
    check_loader_rules(con)
    check_history_matches_deals(con)
    assert scalar(con, "SELECT max(month) FROM quotas") == date(2026, 3, 1)


def test_append_moves_open_deals_and_leaves_old_leads(
    appended: dict[str, Any], tmp_path: Path
) -> None:
    for name, data in appended["steps"][0].items():
        (tmp_path / name).write_bytes(data)
    old, new = load(tmp_path), load(appended["folder"])
    deals = "SELECT opportunity_id, stage_name, is_closed, close_date, amount FROM opportunities"
    before = {row[0]: row for row in old.execute(deals).fetchall()}
    after = {row[0]: row for row in new.execute(deals).fetchall()}
    moved = [after[key] for key, row in before.items() if not row[2] and after[key] != row]
    assert any(row[2] for row in moved) and any(not row[2] for row in moved)
    assert all(after[key] == row for key, row in before.items() if row[2])
    leads = "SELECT * FROM leads"
    assert set(old.execute(leads).fetchall()) <= set(new.execute(leads).fetchall())


def test_append_is_deterministic(appended: dict[str, Any], tmp_path: Path) -> None:
    generate_export(tmp_path, seed=3, opportunities=400)
    for _ in range(2):
        generate_export(tmp_path, seed=3, opportunities=400, append=True)
    assert file_bytes(tmp_path) == appended["steps"][-1]


def test_append_to_parquet(tmp_path: Path) -> None:
    generate_export(tmp_path, seed=4, opportunities=200, file_format="parquet")
    counts = generate_export(
        tmp_path, seed=4, opportunities=200, file_format="parquet", append=True
    )
    assert (tmp_path / "activities.append-0001.parquet").exists()
    con = load(tmp_path)
    check_keys_unique(con)
    check_references(con)
    assert scalar(con, "SELECT count(*) FROM opportunities") == counts["opportunities"] == 202


def test_a_new_export_replaces_part_files(tmp_path: Path) -> None:
    generate_export(tmp_path, seed=4, opportunities=100)
    generate_export(tmp_path, seed=4, opportunities=100, append=True)
    generate_export(tmp_path, seed=4, opportunities=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv" for t in CONTRACT)


def test_append_needs_an_export(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"teams\.csv"):
        generate_export(tmp_path, append=True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"file_format": "json"}, "file_format"),
        ({"opportunities": 0}, "opportunities"),
        ({"start": date(2025, 1, 15)}, "first day"),
        ({"months": 1}, "months"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        generate_export(tmp_path, **arguments)
