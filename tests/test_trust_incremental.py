"""Incremental builds that once kept wrong numbers with exit 0, one test per
case; the state machine in `test_incremental_stateful.py` looks for more."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import captured
from test_incremental_stateful import FIXTURE, PROJECT_PARTS, ROOT, warehouse_tables

from runner.project import Project
from runner.reporting import Reporter


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of this project and of the hand fixture export, to edit freely."""
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / "project" / part)
        elif source.exists():
            (tmp_path / "project" / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / "project" / part)
    shutil.copytree(FIXTURE, tmp_path / "export", ignore=shutil.ignore_patterns("*.md"))
    return tmp_path


def build(work: Path, name: str = "incremental", **options: object) -> Project:
    vars = options.pop("vars", None)
    project = Project.load(
        work / "project",
        warehouse=work / name / "w.duckdb",
        raw_dir=work / "export",
        vars=vars,  # type: ignore[arg-type]
        target_path=work / name / "target",
        reporter=Reporter(stream=io.StringIO()),
    )
    result = project.build(**options)
    failed = [(r.name, r.message) for r in result.results if r.status in ("error", "fail")]
    assert result.exit_code == 0, failed
    return project


def assert_equals_clean_build(work: Path, **options: object) -> None:
    shutil.rmtree(work / "clean", ignore_errors=True)
    build(work, "clean", **options)
    built = warehouse_tables(work / "incremental" / "w.duckdb")
    clean = warehouse_tables(work / "clean" / "w.duckdb")
    assert built.keys() == clean.keys()
    for relation, rows in clean.items():
        assert built[relation] == rows, relation


def mart(work: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(work / "incremental" / "w.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def append_activities(work: Path, name: str, rows: list[str]) -> None:
    header = "activity_id,owner_id,activity_type,occurred_at,lead_id,opportunity_id,account_id\n"
    (work / "export" / name).write_text(header + "".join(r + "\n" for r in rows))


def test_item2_a_partial_build_does_not_poison_later_builds(workspace: Path) -> None:
    build(workspace)
    january_calls = (
        "select calls from marts.kpi_sales_effort "
        "where level = 'rep' and rep_id = 'r1' and month = '2026-01-01'"
    )
    (before,) = mart(workspace, january_calls)
    # two new January calls by r1, then only the mart is built: its input
    # (int_activities_aggregated) is not rebuilt, so it cannot see them yet
    append_activities(
        workspace,
        "activities.p1.csv",
        ["new1,r1,call,2026-01-15 10:00:00,,,", "new2,r1,call,2026-01-16 10:00:00,,,"],
    )
    build(workspace, select=["kpi_sales_effort"])
    assert mart(workspace, january_calls) == [before]
    # the next full builds fold the two calls in: 2 more than before
    build(workspace)
    build(workspace)
    assert mart(workspace, january_calls) == [(before[0] + 2,)]
    assert_equals_clean_build(workspace)


def test_item2_a_partial_build_of_lead_conversion_does_not_poison_later_builds(
    workspace: Path,
) -> None:
    build(workspace)
    leads = workspace / "export" / "leads.csv"
    header = leads.read_text().splitlines()[0]
    (workspace / "export" / "leads.p1.csv").write_text(
        header + "\nNEW1,2026-02-03 09:00:00,r1,web,new,,,,,\n"
    )
    build(workspace, select=["kpi_lead_conversion"])
    build(workspace)
    february = (
        "select leads from marts.kpi_lead_conversion "
        "where level = 'rep' and rep_id = 'r1' and month = '2026-02-01'"
    )
    clean_leads = mart(workspace, february)
    assert_equals_clean_build(workspace)
    assert clean_leads and clean_leads[0][0] >= 1


def test_item3_a_staging_view_logic_change_rebuilds_incremental_models_below(
    workspace: Path,
) -> None:
    project = build(workspace)
    view = workspace / "project" / "models/staging/crm/stg_crm__activities.sql"
    view.write_text(
        view.read_text().replace(
            "    from source\n)", "    from source\n    where activity_id <> 'act01'\n)"
        )
    )
    project = build(workspace)
    output = captured(project)
    assert "Rebuilding int_activities_aggregated in full" in output
    assert_equals_clean_build(workspace)


def test_item4_months_that_leave_the_range_leave_the_month_partitioned_marts(
    workspace: Path,
) -> None:
    build(workspace)
    deals = workspace / "export" / "opportunities.csv"
    original = deals.read_text()
    # o1 closed far ahead: the range stretches to March 2027
    deals.write_text(original.replace(",2026-01-20\n", ",2027-03-15\n", 1))
    build(workspace)
    (last,) = mart(workspace, "select max(month) from marts.kpi_sales_effort")
    assert str(last[0]) == "2027-03-01"
    # back to its real close date: the months after the data are gone again
    deals.write_text(original)
    build(workspace)
    build(workspace)
    for model in ("kpi_sales_effort", "kpi_lead_conversion", "kpi_lead_response_time"):
        (last,) = mart(workspace, f"select max(month) from marts.{model}")
        assert str(last[0]) < "2027-01-01", model
    assert_equals_clean_build(workspace)


@pytest.mark.parametrize(
    ("vars", "activity"),
    [
        # an activity after end_month
        ({"end_month": "2026-02-01"}, "new1,r1,call,2026-03-20 10:00:00,,,"),
        # an activity on a lead created before start_month
        ({"start_month": "2026-02-01"}, "new1,r1,call,2026-02-20 10:00:00,L1,,"),
    ],
    ids=["end_month", "start_month"],
)
def test_item5_start_and_end_month_hold_in_incremental_builds(
    workspace: Path, vars: dict[str, str], activity: str
) -> None:
    build(workspace, vars=vars)
    append_activities(workspace, "activities.p1.csv", [activity])
    build(workspace, vars=vars)
    for model in ("kpi_sales_effort", "kpi_lead_conversion", "kpi_lead_response_time"):
        months = mart(workspace, f"select min(month), max(month) from marts.{model}")
        first, last = (str(m) for m in months[0])
        assert first >= vars.get("start_month", "0000"), model
        assert last <= vars.get("end_month", "9999"), model
    assert_equals_clean_build(workspace, vars=vars)


def test_item19_no_warnings_about_the_runners_own_state(workspace: Path) -> None:
    build(workspace)
    append_activities(workspace, "activities.p1.csv", ["new1,r1,call,2026-01-15 10:00:00,,,"])
    project = build(workspace)
    output = captured(project)
    assert "node_state" not in output
    assert "without ref() or source()" not in output


def test_item19_entity_marts_carry_no_bookkeeping_columns(workspace: Path) -> None:
    build(workspace)
    columns = mart(
        workspace,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' and column_name like '\\_%' escape '\\'",
    )
    assert columns == []


def test_item3_a_stale_view_left_by_a_partial_build_still_rebuilds_below(
    workspace: Path,
) -> None:
    """A macro edit, then partial builds that rebuild an incremental model
    from a view still holding the old SQL: once the view is rebuilt, so is the
    model, in full (it records what it was built from, not what the project
    says now)."""
    build(workspace)
    macro = workspace / "project" / "macros" / "activity_types.sql"
    text = macro.read_text()
    edited = text.replace(
        "activity_type as mapped_activity_type",
        "replace(activity_type, 'demo', 'meeting') as mapped_activity_type",
    )
    assert edited != text
    macro.write_text(edited)
    build(workspace, select=["kpi_sales_effort"])
    # the aggregate rebuilds in full, but from stg_crm__activities as the
    # warehouse holds it: the view still maps demos to demos
    build(workspace, select=["int_activities_aggregated"])
    build(workspace)
    assert mart(workspace, "select sum(demos) from intermediate.int_activities_aggregated") == [
        (0,)
    ]
    assert_equals_clean_build(workspace)


def test_a_seed_edit_rebuilds_the_incremental_models_that_read_it(workspace: Path) -> None:
    """The activity-type seed maps demos to meetings: the next build reloads
    the seed and rebuilds what counts activities, as a clean build would."""
    build(workspace)
    assert mart(workspace, "select sum(demos) from intermediate.int_activities_aggregated") != [
        (0,)
    ]
    seed = workspace / "project" / "seeds" / "activity_types.csv"
    text = seed.read_text()
    assert "type,demo,demo\n" in text
    seed.write_text(text.replace("type,demo,demo\n", "type,demo,meeting\n"))
    build(workspace)
    assert mart(workspace, "select sum(demos) from intermediate.int_activities_aggregated") == [
        (0,)
    ]
    assert_equals_clean_build(workspace)


def _spy_tests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every data test run from now on."""
    from runner import data_tests

    ran: list[str] = []
    real = data_tests.run_test

    def spy(cur, sql, config, path=None, failures=None):  # type: ignore[no-untyped-def]
        ran.append(sql)
        return real(cur, sql, config, path, failures)

    monkeypatch.setattr(data_tests, "run_test", spy)
    return ran


def _accepted_types(ran: list[str]) -> list[str]:
    """The runs of the activity types' accepted_values test."""
    return [sql for sql in ran if "stg_crm__activities" in sql and "'meeting'" in sql]


@pytest.mark.parametrize("reload", ["build", "seed, then test"])
def test_tests_below_a_seed_check_new_rows_until_the_seed_changes(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, reload: str
) -> None:
    """`stg_crm__activities` reads the activity-type seed: its tests check only
    new activities, and all of them again once the seed changed, here to a
    type its accepted_values test refuses, with no new activity."""
    build(workspace)
    ran = _spy_tests(monkeypatch)
    new_call = "act900,r1,call,2026-01-05T10:00:00Z,,,"
    append_activities(workspace, "activities.part-9.csv", [new_call])
    build(workspace)
    assert _accepted_types(ran) and all("_load_id >" in sql for sql in _accepted_types(ran))
    seed = workspace / "project" / "seeds" / "activity_types.csv"
    seed.write_text(seed.read_text().replace("type,demo,demo\n", "type,demo,webinar\n"))
    # the seed's own test would refuse the new type first and skip what is below
    described = workspace / "project" / "seeds" / "activity_types.yml"
    described.write_text(described.read_text().replace("demo, other]", "demo, other, webinar]"))
    ran.clear()
    project = Project.load(
        workspace / "project",
        warehouse=workspace / "incremental" / "w.duckdb",
        raw_dir=workspace / "export",
        target_path=workspace / "incremental" / "target",
        reporter=Reporter(stream=io.StringIO()),
    )
    if reload == "build":
        result = project.build()
    else:
        assert project.seed().exit_code == 0
        result = project.test()
    failed = {r.name for r in result.results if r.status == "fail"}
    assert any(name.startswith("accepted_values_stg_crm__activities") for name in failed), failed
    assert _accepted_types(ran) and not any("_load_id >" in sql for sql in _accepted_types(ran))
