"""A CRM export with bad and suspicious rows: what is rejected, what is kept
and reported, and that nothing is half-loaded (README, "What happens when...").

Built on the hand-made fixture, with rows added to its files."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import pytest

from runner.errors import LoadError
from runner.project import Project
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"

REJECTED = {
    # file: (row appended, the reason reported for it)
    "users.csv": ("r900,Rex,,Rep,T1,m1,2025-01-01,", "role is not 'rep' or 'manager'"),
    "opportunities.csv": (
        "o902,a1,r1,,No close date,new_business,10,closed_won,true,true,2026-02-01 10:00:00,",
        "a closed deal has no close_date",
    ),
    "quotas.csv": ("r1,2026-02-15,100", "a quota month is not the first day of a month"),
    "activities.csv": (
        "act900,r1,call,yesterday at noon,,,",
        "column occurred_at: 'yesterday at noon' is not an ISO 8601 timestamp",
    ),
    "subscriptions.csv": (
        "s900,a1,2026-01-01,,123456789012345.5",
        "column mrr: '123456789012345.5' is not money",
    ),
    "leads.csv": (
        "L1,2026-01-02 09:00:00,r1,web,new,,,,,",
        "duplicate key (lead_id): an earlier row has the same value",
    ),
}

KEPT = {
    # file: rows appended; each is kept and reported by a warn-severity test
    "opportunities.csv": [
        # a negative amount, closed before it was created
        "o900,a1,r1,,Backdated,new_business,-50.00,closed_won,true,true,"
        "2026-03-10 10:00:00,2026-03-01",
        # a stage that is not in pipeline_stages, and an owner not in users
        "o901,a1,nobody,,Mystery,new_business,10,mystery,false,false,2026-02-01 10:00:00,",
    ],
    # a lead dated far in the future
    "leads.csv": ["L900,2099-01-01 10:00:00,r1,web,new,,,,,"],
    # history of a deal that does not exist
    "opportunity_stage_history.csv": ["o999,prospecting,2026-02-01 10:00:00"],
}
WARNINGS = {
    "accepted_range_crm_opportunities_amount__0",
    "crm_opportunities_close_date_not_before_created_at",
    "relationships_crm_opportunities_owner_id__user_id__so_f7046e555e",
    "relationships_crm_opportunities_stage_name__stage_nam_3fe957d0f4",
    "crm_leads_created_at_not_in_the_future",
    "relationships_crm_opportunity_stage_history_opportuni_f968364b10",
}


def export_with(tmp_path: Path, rows: dict[str, list[str]]) -> Path:
    export = tmp_path / "export"
    shutil.copytree(FIXTURE, export, ignore=shutil.ignore_patterns("*.md"))
    for name, extra in rows.items():
        path = export / name
        text = path.read_text(encoding="utf-8")
        path.write_text(text.rstrip("\n") + "\n" + "\n".join(extra) + "\n", encoding="utf-8")
    return export


def project(tmp_path: Path, export: Path) -> Project:
    return Project.load(
        ROOT,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=export,
        target_path=tmp_path / "target",
        reporter=Reporter(stream=io.StringIO()),
    )


def test_rejected_rows_stop_the_build_with_file_line_and_reason(tmp_path: Path) -> None:
    export = export_with(tmp_path, {f: [row] for f, (row, _) in REJECTED.items()})
    with pytest.raises(LoadError) as info:
        project(tmp_path, export).build()
    text = str(info.value)
    assert f"{len(REJECTED)} row(s) of the export break the contract" in text
    for name, (_, reason) in REJECTED.items():
        lines = (export / name).read_text(encoding="utf-8").rstrip("\n").count("\n") + 1
        assert f"{export / name}: 1 rejected row(s)\n    line {lines}: {reason}" in text
    assert not (tmp_path / "w.duckdb").exists() or _tables(tmp_path / "w.duckdb") == []


def test_quarantined_rows_are_kept_with_their_reason_and_the_rest_builds(tmp_path: Path) -> None:
    export = export_with(tmp_path, {f: [row] for f, (row, _) in REJECTED.items()})
    result = project(tmp_path, export).build(on_bad_rows="quarantine")
    assert result.exit_code == 0, result.summary
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    kept = dict(con.execute("select file_name, reason from raw.rejected_rows").fetchall())
    assert set(kept) == set(REJECTED)
    for name, (_, reason) in REJECTED.items():
        assert kept[name].startswith(reason)
    assert con.execute("select count(*) from marts.kpi_win_rate").fetchone()[0] > 0


def test_suspicious_rows_are_kept_and_reported_by_warn_tests(tmp_path: Path) -> None:
    export = export_with(tmp_path, KEPT)
    result = project(tmp_path, export).build()
    assert result.exit_code == 0, result.summary
    statuses = result.statuses()
    assert {name for name in WARNINGS if statuses.get(name) == "warn"} == WARNINGS
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    # kept as written: a won deal of -50 that took -9 days (first touch on the
    # 10th, closed on the 1st)...
    deal = con.execute(
        "select amount, is_won, days_to_close from marts.fct_opportunities "
        "where opportunity_id = 'o900'"
    ).fetchone()
    assert deal is not None and (float(deal[0]), deal[1], deal[2]) == (-50.0, True, -9)
    # ...and the future lead stretches the reporting range to its month
    assert con.execute("select max(month) from marts.kpi_lead_conversion").fetchone() == (
        __import__("datetime").date(2099, 1, 1),
    )


def _tables(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        ]
    finally:
        con.close()


def test_a_var_value_is_quoted_never_spliced(tmp_path: Path) -> None:
    hostile = "2026-01-01' as timestamp)); create table main.pwned as (select 1); select (cast('"
    export = export_with(tmp_path, {})
    built = Project.load(
        ROOT,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=export,
        target_path=tmp_path / "target",
        vars={"start_month": hostile},
        reporter=Reporter(stream=io.StringIO()),
    ).build()
    assert built.exit_code == 1  # the value is not a date: int_months_reported fails
    assert built.statuses()["int_months_reported"] == "error"
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    tables = con.execute(
        "select table_name from information_schema.tables where table_name = 'pwned'"
    ).fetchall()
    assert tables == []
    compiled = (
        tmp_path / "target/compiled/models/intermediate/int_months_reported.sql"
    ).read_text()
    assert "'2026-01-01'' as timestamp)); create table main.pwned" in compiled
