"""Properties that hold for any CRM export, checked on random ones (hypothesis).

Each example is a small export drawn with ties, revisits, unknown owners,
NULL amounts, late activities and so on, in two versions: an earlier one (A)
and a later one (B) that adds rows in part files and changes, adds and
removes rows of the snapshot tables. The marts of B must hold every invariant
below, and building A then B incrementally must give exactly the marts of a
full build of B.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.project import Project
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 1)
STAGES = [
    ("prospecting", 1, "false", "false"),
    ("qualification", 2, "false", "false"),
    ("proposal", 3, "false", "false"),
    ("closed_won", 4, "true", "true"),
    ("closed_lost", 5, "true", "false"),
]
ACTIVITY_TYPES = ["call", " Email", "MEETING ", "demo", "\tcall", "lunch"]
ADDITIVE = {
    "kpi_win_rate": ["won_deals", "lost_deals", "closed_deals"],
    "kpi_lead_conversion": ["leads", "mqls", "sqls", "customers"],
    "kpi_avg_deal_size": ["won_deals", "won_amount"],
    "kpi_days_to_close": ["won_deals", "total_days_to_close"],
    "kpi_quota_attainment": ["quota_amount", "won_amount", "reps_with_quota", "reps_meeting_quota"],
    "kpi_monthly_sales": ["won_deals", "won_amount", "quota_amount"],
    "kpi_lead_response_time": ["leads", "contacted_leads", "contacted_within_1h"],
    "kpi_sales_effort": [
        "calls",
        "emails",
        "meetings",
        "demos",
        "other_activities",
        "total_activities",
    ],
}
BOUNDED = {
    "kpi_win_rate": [("win_rate", 1)],
    "kpi_lead_conversion": [("conversion_rate_pct", 100)],
    "kpi_quota_attainment": [("pct_reps_meeting_quota", 100)],
    "kpi_churn": [("churn_rate", 1)],
    "kpi_lead_response_time": [("pct_contacted_within_1h", 100)],
}
MARTS = sorted({*ADDITIVE, *BOUNDED, "kpi_stage_duration", "kpi_churn"})


def moments(draw: st.DrawFn) -> datetime:
    return START + timedelta(minutes=draw(st.integers(0, 4 * 30 * 24 * 60)))


@st.composite
def exports(draw: st.DrawFn) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Two versions (A, B) of a small export: table -> rows (as CSV strings)."""
    teams = [{"team_id": f"T{i}", "team_name": f"Team {i}", "region": ""} for i in range(2)]
    users = [
        {
            "user_id": f"u{i}",
            "full_name": f"User {i}",
            "email": "",
            "role": "manager" if i == 0 else "rep",
            "team_id": f"T{draw(st.integers(0, 1))}",
            "manager_id": "",
            "hired_at": str(date(2025, 12, 1) + timedelta(days=draw(st.integers(0, 90)))),
            "terminated_at": draw(st.sampled_from(["", "", "2026-02-15"])),
        }
        for i in range(draw(st.integers(2, 4)))
    ]
    owners = [u["user_id"] for u in users] + ["ghost"]
    deals = []
    history = []
    for i in range(draw(st.integers(1, 6))):
        created = draw(st.builds(moments, st.just(draw)))
        state = draw(st.sampled_from(["open", "won", "lost"]))
        close = created.date() + timedelta(days=draw(st.integers(-3, 60)))
        deal_id = f"o{i}"
        deals.append(
            {
                "opportunity_id": deal_id,
                "account_id": "a0",
                "owner_id": draw(st.sampled_from(owners)),
                "lead_id": draw(st.sampled_from(["", "L0", "L1"])),
                "opportunity_name": "",
                "opportunity_type": "new_business",
                "amount": draw(st.sampled_from(["", "100", "250.5", "0"])),
                "stage_name": {"won": "closed_won", "lost": "closed_lost"}.get(state, "proposal"),
                "is_closed": "false" if state == "open" else "true",
                "is_won": str(state == "won").lower(),
                "created_at": str(created),
                "close_date": "" if state == "open" else str(close),
            }
        )
        for _ in range(draw(st.integers(0, 4))):
            history.append(
                {
                    "opportunity_id": draw(st.sampled_from([deal_id, deal_id, "o99"])),
                    "stage_name": draw(st.sampled_from([s[0] for s in STAGES] + ["mystery"])),
                    "entered_at": str(draw(st.builds(moments, st.just(draw)))),
                }
            )
    leads = [
        {
            "lead_id": f"L{i}",
            "created_at": str(draw(st.builds(moments, st.just(draw)))),
            "owner_id": draw(st.sampled_from(owners)),
            "lead_source": "web",
            "status": "new",
            "mql_at": draw(st.sampled_from(["", "2026-02-01 00:00:00"])),
            "sql_at": draw(st.sampled_from(["", "2026-02-02 00:00:00"])),
            "converted_at": "",
            "converted_account_id": "",
            "converted_opportunity_id": draw(st.sampled_from(["", "o0", "o0", "o1"])),
        }
        for i in range(draw(st.integers(1, 5)))
    ]
    activities = [
        {
            "activity_id": f"x{i}",
            "owner_id": draw(st.sampled_from(owners)),
            "activity_type": draw(st.sampled_from(ACTIVITY_TYPES)),
            "occurred_at": str(draw(st.builds(moments, st.just(draw)))),
            "lead_id": draw(st.sampled_from(["", "L0", "L1", "L2"])),
            "opportunity_id": draw(st.sampled_from(["", "o0", "o1"])),
            "account_id": "",
        }
        for i in range(draw(st.integers(0, 10)))
    ]
    quotas = [
        {"user_id": u["user_id"], "month": f"2026-0{m}-01", "quota_amount": str(q)}
        for u in users
        for m in range(1, 5)
        if (q := draw(st.sampled_from([None, 0, 100, 300]))) is not None
    ]
    subscriptions = [
        {
            "subscription_id": f"s{i}",
            "account_id": draw(st.sampled_from(["a0", "a1"])),
            "started_at": str(date(2025, 12, 1) + timedelta(days=draw(st.integers(0, 100)))),
            "ended_at": draw(st.sampled_from(["", "2026-02-01", "2026-03-31"])),
            "mrr": "10",
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    later = {
        "teams": teams,
        "users": users,
        "accounts": [
            {
                "account_id": "a0",
                "account_name": "Acme",
                "industry": "",
                "owner_id": "u1",
                "created_at": "2025-01-01",
            }
        ],
        "pipeline_stages": [
            {"stage_name": n, "stage_order": str(o), "probability": "", "is_closed": c, "is_won": w}
            for n, o, c, w in STAGES
        ],
        "opportunities": deals,
        # (deal, stage, entered_at) is the table's key: a repeat would be
        # rejected by the load, not tested
        "opportunity_stage_history": list(
            {(h["opportunity_id"], h["stage_name"], h["entered_at"]): h for h in history}.values()
        ),
        "leads": leads,
        "activities": activities,
        "quotas": quotas,
        "subscriptions": subscriptions,
    }
    earlier = {table: _earlier_rows(draw, table, rows) for table, rows in later.items()}
    return {"A": earlier, "B": later}


APPENDED = ("activities", "opportunity_stage_history", "leads")


def _earlier_rows(draw: st.DrawFn, table: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """An earlier state of a table: event tables miss some rows (appended later
    in a part file); snapshot tables miss some rows, hold older values in
    others, and some rows that are gone later."""
    keep_all = table in ("teams", "pipeline_stages")
    kept = [r for r in rows if keep_all or draw(st.integers(0, 3)) > 0]
    if table in APPENDED:
        return kept
    earlier = []
    for row in kept:
        row = dict(row)
        if table == "opportunities" and row["is_closed"] == "true" and draw(st.integers(0, 3)) > 0:
            # the deal closed later: earlier it was still open
            row.update(stage_name="qualification", is_closed="false", is_won="false", close_date="")
        if table == "users" and draw(st.integers(0, 9)) == 0:
            row["team_id"] = "T0" if row["team_id"] == "T1" else "T1"
        earlier.append(row)
    if rows and table in ("opportunities", "subscriptions") and draw(st.integers(0, 5)) == 0:
        earlier.append({**rows[0], **_gone_row(table)})  # a row the later export drops
    return earlier


def _gone_row(table: str) -> dict[str, str]:
    return {
        "opportunities": {"opportunity_id": "o_gone"},
        "subscriptions": {"subscription_id": "s_gone"},
    }[table]


def write_export(
    folder: Path, version: dict[str, list[dict[str, str]]], parts: dict | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in version.items():
        _write_csv(folder / f"{table}.csv", table, rows)
    for table, rows in (parts or {}).items():
        _write_csv(folder / f"{table}.part-2.csv", table, rows)


def _write_csv(path: Path, table: str, rows: list[dict[str, str]]) -> None:
    columns = _columns(table)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _columns(table: str) -> list[str]:
    import yaml

    sources = yaml.safe_load((ROOT / "models/staging/crm/_crm__sources.yml").read_text())
    tables = {t["name"]: t for t in sources["sources"][0]["tables"]}
    return [c["name"] for c in tables[table]["columns"]]


def build(warehouse: Path, export: Path, full_refresh: bool = False) -> None:
    project = Project.load(
        ROOT,
        warehouse=warehouse,
        raw_dir=export,
        target_path=warehouse.parent / "target",
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    project.seed()
    result = project.run(full_refresh=full_refresh)
    assert result.exit_code == 0, [r.message for r in result.results if r.status == "error"]


def marts(warehouse: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            m: sorted(con.execute(f"select * from marts.{m}").fetchall(), key=repr) for m in MARTS
        }
    finally:
        con.close()


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(versions=exports())
def test_invariants_and_incremental_identity(tmp_path_factory, versions) -> None:
    work = tmp_path_factory.mktemp("prop")
    earlier, later = versions["A"], versions["B"]
    # the full build of B
    write_export(work / "b", later)
    build(work / "full" / "w.duckdb", work / "b")
    full = marts(work / "full" / "w.duckdb")
    check_invariants(work / "full" / "w.duckdb")
    # A, then B as appended parts and rewritten snapshots, built incrementally
    incremental = work / "inc" / "w.duckdb"
    write_export(work / "export", earlier)
    build(incremental, work / "export")
    appended = {t: [r for r in later[t] if r not in earlier[t]] for t in APPENDED}
    snapshots = {t: rows for t, rows in later.items() if t not in APPENDED}
    write_export(work / "export", {**snapshots, **{t: earlier[t] for t in APPENDED}}, appended)
    build(incremental, work / "export")
    assert marts(incremental) == full


def check_invariants(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for mart, columns in BOUNDED.items():
            for column, top in columns:
                bad = con.execute(
                    f"select count(*) from marts.{mart} where {column} < 0 or {column} > {top}"
                ).fetchone()
                assert bad == (0,), (mart, column)
        assert con.execute(
            "select count(*) from marts.kpi_win_rate where won_deals + lost_deals <> closed_deals"
        ).fetchone() == (0,)
        assert con.execute(
            "select count(*) from marts.kpi_churn where customers_at_end <> "
            "customers_at_start + new_customers - churned_customers"
        ).fetchone() == (0,)
        for mart, columns in ADDITIVE.items():
            for column in columns:
                _assert_levels_add_up(con, mart, column)
        effort = con.execute(
            "select coalesce(sum(total_activities), 0) from marts.kpi_sales_effort "
            "where level = 'rep'"
        ).fetchone()
        activities = con.execute(
            "select count(*) from raw.activities where date_trunc('month', occurred_at) between "
            "(select min(month) from marts.kpi_sales_effort) and "
            "(select max(month) from marts.kpi_sales_effort)"
        ).fetchone()
        assert effort == activities
    finally:
        con.close()


def _assert_levels_add_up(con: duckdb.DuckDBPyConnection, mart: str, column: str) -> None:
    """Company rows = the sum of team rows = the sum of rep rows, each month."""
    rows = con.execute(
        f"""
        select month,
            sum({column}) filter (where level = 'company') as company,
            sum({column}) filter (where level = 'team') as teams,
            sum({column}) filter (where level = 'rep') as reps
        from marts.{mart}
        group by month
        having company is distinct from coalesce(teams, 0)
            or company is distinct from coalesce(reps, 0)
        """
    ).fetchall()
    assert rows == [], (mart, column, rows)
