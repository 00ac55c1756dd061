"""Every KPI value of the `crm_small` export, computed by hand from KPI_SPEC.md.

The input is `tests/fixtures/crm_small/` (described in its README.md); the
expected rows of each mart are `tests/fixtures/kpi_values/<mart>.yml`, each
value with the arithmetic that gives it, naming the fixture rows (deals `o*`,
leads `L*`, activities `act*`, subscriptions `s*`). The export is built once;
`test_mart_matches_its_expected_rows` checks one mart against its file and
names every value that differs. The tests below it check what holds for every
mart: the range, the columns, people over time and the roll-up.

Users: `m1` manager (T1), `r1` (T1), `r2` (T1, terminated 2026-02-20), `r3`
(T2, hired 2026-03-10), `r4` (T2), and `x9`, an owner id missing from `users`
(team NULL). Active reps per month: Jan r1 r2 r4; Feb r1 r2 r4; Mar r1 r3 r4;
Apr r1 r3 r4.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from runner import Project

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"
EXPECTED = ROOT / "tests" / "fixtures" / "kpi_values"

JAN = date(2026, 1, 1)
FEB = date(2026, 2, 1)
MAR = date(2026, 3, 1)
APR = date(2026, 4, 1)
MONTHS = [JAN, FEB, MAR, APR]

# Columns of each mart beyond the shared month / level / team_id / rep_id
# (KPI_SPEC section 2).
MART_COLUMNS: dict[str, list[str]] = {
    "kpi_win_rate": ["won_deals", "lost_deals", "closed_deals", "win_rate"],
    "kpi_lead_conversion": [
        "leads",
        "mqls",
        "sqls",
        "customers",
        "conversion_rate_pct",
        "mql_to_sql_rate",
        "sql_to_customer_rate",
    ],
    "kpi_avg_deal_size": [
        "won_deals",
        "won_amount",
        "avg_deal_size",
        "prev_avg_deal_size",
        "mom_change_pct",
    ],
    "kpi_days_to_close": ["won_deals", "total_days_to_close", "avg_days_to_close"],
    "kpi_quota_attainment": [
        "quota_amount",
        "won_amount",
        "attainment",
        "reps_with_quota",
        "reps_meeting_quota",
        "pct_reps_meeting_quota",
        "met_quota",
    ],
    "kpi_stage_duration": [
        "stage_name",
        "stage_order",
        "exits",
        "total_days_in_stage",
        "avg_days_in_stage",
        "median_days_in_stage",
        "open_deals_at_month_end",
    ],
    "kpi_monthly_sales": [
        "won_deals",
        "won_amount",
        "quota_amount",
        "attainment",
        "prev_won_amount",
        "mom_growth_pct",
    ],
    "kpi_churn": [
        "customers_at_start",
        "customers_at_end",
        "new_customers",
        "churned_customers",
        "churn_rate",
        "net_churn_rate",
    ],
    "kpi_lead_response_time": [
        "leads",
        "contacted_leads",
        "total_response_minutes",
        "avg_response_minutes",
        "median_response_minutes",
        "contacted_within_1h",
        "pct_contacted_within_1h",
    ],
    "kpi_sales_effort": [
        "calls",
        "emails",
        "meetings",
        "demos",
        "other_activities",
        "total_activities",
    ],
}
SHARED = ["month", "level", "team_id", "rep_id"]
STAGES = ["prospecting", "qualification", "evaluation", "proposal", "negotiation"]

Row = dict[str, Any]


class Marts(dict[str, list[Row]]):
    """Every row of every mart, and each mart's column names."""

    columns: dict[str, list[str]]


# --------------------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Marts:
    """Every row of every mart of the fixture's build, read once."""
    work = tmp_path_factory.mktemp("kpi")
    path = work / "warehouse.duckdb"
    project = Project.load(ROOT, warehouse=path, raw_dir=FIXTURE, target_path=work / "target")
    result = project.build()
    assert result.exit_code == 0, result.summary
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = Marts()
        found.columns = {}
        for mart in MART_COLUMNS:
            cur = con.execute(f"select * from marts.{mart}")
            names = [d[0] for d in cur.description]
            found.columns[mart] = names
            found[mart] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return found
    finally:
        con.close()


def rows(marts: dict[str, list[Row]], mart: str, **where: Any) -> list[Row]:
    """Rows of a mart whose columns equal `where` (None matches NULL), ordered
    by month, level, team_id, rep_id (NULL first) and stage."""

    def order(row: Row) -> tuple:
        keys = [row.get(c) for c in SHARED] + [row.get("stage_order"), row.get("stage_name")]
        return tuple((value is not None, value if value is not None else 0) for value in keys)

    found = [r for r in marts[mart] if all(r.get(c) == v for c, v in where.items())]
    return sorted(found, key=order)


def rep_months(marts: dict[str, list[Row]], mart: str, rep_id: str) -> list[date]:
    return [r["month"] for r in rows(marts, mart, level="rep", rep_id=rep_id)]


# --------------------------------------------------------------------------- expected rows


def _same(actual: Any, expected: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, int | float):
        if actual is None or isinstance(actual, bool):
            return False
        if isinstance(actual, Decimal):
            actual = float(actual)
        return float(actual) == pytest.approx(expected)
    return actual == expected


class Checker:
    """Compares one mart with its expected file; collects every difference."""

    def __init__(self, marts: dict[str, list[Row]], mart: str) -> None:
        self.marts = marts
        self.mart = mart
        self.problems: list[str] = []

    def check(self, ok: bool, label: str) -> None:
        if not ok:
            self.problems.append(label)

    def values(self, actual: Row, expected: Row, label: str) -> None:
        """Every mart column is given, and each has the expected value."""
        given = set(expected) - set(SHARED)
        self.check(
            given == set(MART_COLUMNS[self.mart]),
            f"{label}: the expected row must give every column, not {sorted(given)}",
        )
        for column, want in expected.items():
            if column in SHARED:
                continue
            if column not in actual:
                self.check(False, f"{label}: {column}: no such column")
            else:
                got = actual[column]
                self.check(_same(got, want), f"{label}: {column}: expected {want!r}, got {got!r}")

    def company_rows(self, expected: list[Row]) -> None:
        """One company row per month of the range, in order, every column as expected."""
        found = rows(self.marts, self.mart, level="company")
        months = [r["month"] for r in found]
        self.check(months == [e["month"] for e in expected], f"company months: {months}")
        by_month = {e["month"]: e for e in expected}
        for row in found:
            label = f"{row['month']} company"
            self.check(row.get("team_id") is None, f"{label}: team_id is {row.get('team_id')!r}")
            self.check(row.get("rep_id") is None, f"{label}: rep_id is {row.get('rep_id')!r}")
            if row["month"] in by_month:
                self.values(row, by_month[row["month"]], label)

    def one_row(self, expected: Row) -> None:
        """Exactly one row has this key, with these values."""
        key = {c: expected[c] for c in SHARED}
        label = " ".join(f"{c}={v}" for c, v in key.items())
        found = rows(self.marts, self.mart, **key)
        self.check(len(found) == 1, f"{label}: expected one row, found {len(found)}")
        if len(found) == 1:
            self.values(found[0], expected, label)

    def stage_rows(self, expected: Row, stage_rows: list[Row]) -> None:
        """Exactly these stages have a row for this key, with these values."""
        key = {c: expected[c] for c in SHARED}
        label = " ".join(f"{c}={v}" for c, v in key.items())
        found = {r["stage_name"]: r for r in rows(self.marts, self.mart, **key)}
        names = {s["stage_name"] for s in stage_rows}
        self.check(set(found) == names, f"{label}: stages {sorted(found)}")
        for want in stage_rows:
            if want["stage_name"] in found:
                stage = want["stage_name"]
                self.values(found[stage], want, f"{label} stage={stage}")

    def row_keys(self, month: date, expected: Iterable[list[Any]]) -> None:
        """The keys of a month's rows are exactly these."""
        columns = ["level", "team_id", "rep_id"]
        if self.mart == "kpi_stage_duration":
            columns.append("stage_name")
        found = {tuple(r[c] for c in columns) for r in rows(self.marts, self.mart, month=month)}
        wanted = {tuple(key) for key in expected}
        self.check(
            found == wanted,
            f"{month} keys: missing {sorted(wanted - found, key=str)}, "
            f"unexpected {sorted(found - wanted, key=str)}",
        )


def expected_stages(spec: dict[str, Any], entry: Row) -> list[Row]:
    """The stage rows of an entry, as mart rows (`stage_columns` order)."""
    stages = []
    for values in entry["stages"]:
        stage = dict(zip(spec["stage_columns"], values, strict=True))
        stage["stage_order"] = spec["stage_order"][stage["stage_name"]]
        stages.append(stage)
    return stages


def check_mart(marts: dict[str, list[Row]], mart: str, spec: dict[str, Any]) -> list[str]:
    """Every difference between a mart and its expected file."""
    checker = Checker(marts, mart)
    company = spec.get("company_rows") or []
    if "stage_columns" in spec:
        found = rows(marts, mart, level="company")
        months = sorted({r["month"] for r in found})
        checker.check(months == [e["month"] for e in company], f"company months: {months}")
        listed = sum(len(e["stages"]) for e in company)
        checker.check(len(found) == listed, f"{len(found)} company rows, {listed} expected")
        for entry in company:
            key = {"month": entry["month"], "level": "company", "team_id": None, "rep_id": None}
            checker.stage_rows(key, expected_stages(spec, entry))
    elif company:
        checker.company_rows(company)
    for entry in spec.get("rows") or []:
        checker.one_row(entry)
    for entry in spec.get("stage_rows") or []:
        checker.stage_rows(entry, expected_stages(spec, entry))
    for entry in spec.get("row_keys") or []:
        checker.row_keys(entry["month"], entry["keys"])
    return checker.problems


EXPECTED_FILES = sorted(EXPECTED.glob("*.yml"))


def test_every_mart_has_an_expected_file() -> None:
    assert [path.stem for path in EXPECTED_FILES] == sorted(MART_COLUMNS)


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=lambda path: path.stem)
def test_mart_matches_its_expected_rows(marts: dict[str, list[Row]], path: Path) -> None:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = check_mart(marts, path.stem, spec)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_a_wrong_expected_value_is_reported(marts: dict[str, list[Row]]) -> None:
    spec = yaml.safe_load((EXPECTED / "kpi_win_rate.yml").read_text(encoding="utf-8"))
    spec["rows"][0]["won_deals"] += 1
    del spec["rows"][1]["win_rate"]
    spec["row_keys"][0]["keys"].pop()
    problems = check_mart(marts, "kpi_win_rate", spec)
    assert len(problems) == 3, problems


# --------------------------------------------------------------------------- range


@pytest.mark.parametrize("mart", sorted(MART_COLUMNS))
def test_company_rows_cover_exactly_the_range_from_the_data(marts, mart):
    # Earliest: act01 2025-12-31T20:00:00-05:00 = 2026-01-01 01:00 UTC (January).
    # Latest: April (leads, deals, activities, quotas). o11 is open: its
    # close_date 2026-06-15 is ignored; subscriptions (2025 .. May 2026) do not count.
    months = sorted({r["month"] for r in rows(marts, mart, level="company")})
    assert months == MONTHS


@pytest.mark.parametrize("mart", sorted(MART_COLUMNS))
def test_mart_columns_are_the_contract_columns(marts, mart):
    present = set(marts.columns[mart])
    wanted = {"month", "level", *MART_COLUMNS[mart]}
    if mart == "kpi_churn":
        # company rows only: team_id / rep_id may be left out (always NULL)
        assert wanted <= present <= wanted | {"team_id", "rep_id"}
    else:
        assert present == wanted | {"team_id", "rep_id"}


def test_churn_has_only_company_rows(marts):
    found = rows(marts, "kpi_churn")
    assert [(r["month"], r["level"]) for r in found] == [(m, "company") for m in MONTHS]


# --------------------------------------------------------------------------- people over time

REP_MARTS = sorted(m for m in MART_COLUMNS if m != "kpi_churn")


@pytest.mark.parametrize("mart", REP_MARTS)
def test_terminated_rep_has_rows_only_while_active_or_owning_counted_rows(marts, mart):
    # r2 is active in Jan and Feb (terminated 2026-02-20). In March r2 only owns o6 (won
    # 2026-03-02), counted by the marts of closed/won deals. Nothing in April.
    # In kpi_stage_duration r2 owns no deal with history: no rows at all.
    owns_march = {
        "kpi_win_rate",
        "kpi_avg_deal_size",
        "kpi_days_to_close",
        "kpi_quota_attainment",
        "kpi_monthly_sales",
    }
    if mart == "kpi_stage_duration":
        expected: list[date] = []
    elif mart in owns_march:
        expected = [JAN, FEB, MAR]
    else:
        expected = [JAN, FEB]
    assert rep_months(marts, mart, "r2") == expected


@pytest.mark.parametrize("mart", sorted(set(REP_MARTS) - {"kpi_stage_duration"}))
def test_rep_hired_mid_range_has_rows_from_hire_month(marts, mart):
    # r3 hired 2026-03-10: active in March and April only
    assert rep_months(marts, mart, "r3") == [MAR, APR]


@pytest.mark.parametrize("mart", REP_MARTS)
def test_manager_has_rep_rows_only_where_owning_counted_rows(marts, mart):
    # m1 owns o4 (history Jan .. Mar, won in March), activities in February and a
    # March quota; no leads
    expected = {
        "kpi_win_rate": [MAR],
        "kpi_avg_deal_size": [MAR],
        "kpi_days_to_close": [MAR],
        "kpi_quota_attainment": [MAR],
        "kpi_monthly_sales": [MAR],
        "kpi_stage_duration": [JAN, JAN, JAN, JAN, FEB, MAR],  # 4 stages in Jan
        "kpi_lead_conversion": [],
        "kpi_lead_response_time": [],
        "kpi_sales_effort": [FEB],
    }[mart]
    assert rep_months(marts, mart, "m1") == expected


# --------------------------------------------------------------------------- roll-up

ADDITIVE = {
    "kpi_win_rate": ["won_deals", "lost_deals", "closed_deals"],
    "kpi_lead_conversion": ["leads", "mqls", "sqls", "customers"],
    "kpi_avg_deal_size": ["won_deals", "won_amount"],
    "kpi_days_to_close": ["won_deals", "total_days_to_close"],
    "kpi_quota_attainment": [
        "quota_amount",
        "won_amount",
        "reps_with_quota",
        "reps_meeting_quota",
    ],
    "kpi_monthly_sales": ["won_deals", "won_amount", "quota_amount"],
    "kpi_lead_response_time": ["leads", "contacted_leads", "total_response_minutes"],
    "kpi_sales_effort": MART_COLUMNS["kpi_sales_effort"],
    "kpi_stage_duration": ["exits", "total_days_in_stage", "open_deals_at_month_end"],
}


@pytest.mark.parametrize("mart", sorted(ADDITIVE))
def test_company_rows_equal_sum_of_team_rows_and_of_rep_rows(marts, mart):
    found = rows(marts, mart)
    by_stage = mart == "kpi_stage_duration"
    for month in MONTHS:
        for group in STAGES if by_stage else [None]:
            sel = [
                r
                for r in found
                if r["month"] == month and (not by_stage or r["stage_name"] == group)
            ]
            for column in ADDITIVE[mart]:
                sums = {
                    level: sum(float(r[column]) for r in sel if r["level"] == level)
                    for level in ("company", "team", "rep")
                }
                label = f"{mart} {month} {group or ''} {column}"
                assert sums["team"] == pytest.approx(sums["company"]), label
                assert sums["rep"] == pytest.approx(sums["company"]), label
