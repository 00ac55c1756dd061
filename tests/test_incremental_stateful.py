"""Any sequence of changes, built incrementally, equals a clean build.

A hypothesis state machine starts from the hand fixture (`fixtures/crm_small`)
and applies random steps to the export, the vars and the project itself:
appended part files, snapshot edits (amounts, stages, reopened deals, deals
closed far in the future, owner and team moves, deletes), removed and renamed
part files, `start_month` / `end_month`, edits of a staging view, a macro and
a staging column, and a load that fails on a bad row and is then fixed. After
each step it builds, with a random selection (`-s kpi_sales_effort`,
`-s +kpi_lead_response_time`, ...) or none. After every unselected build,
and at the end of every sequence, every table and view of the raw, staging,
intermediate and marts schemas must equal a clean build of the same export,
vars and project from scratch (bookkeeping `_load_id` columns aside).
Half the sequences run with every export file counted as settled, so that
the loader knows unchanged files by their stat instead of their bytes.

CI runs a few short sequences; for a long run:

    KPI_STATEFUL_EXAMPLES=200 KPI_STATEFUL_STEPS=25 pytest tests/test_incremental_stateful.py
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from runner import raw_files
from runner.errors import LoadError
from runner.project import Project
from runner.reporting import Reporter

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "crm_small"
SCHEMAS = ("raw", "staging", "intermediate", "marts")
PROJECT_PARTS = ("pyproject.toml", "models", "macros", "seeds", "data_tests")
EXAMPLES = int(os.environ.get("KPI_STATEFUL_EXAMPLES", "3"))
STEPS = int(os.environ.get("KPI_STATEFUL_STEPS", "6"))

# project edits a user might make: file, text, replacement (all keep the tests green)
EDITS = {
    "staging view drops activities": (
        "models/staging/crm/stg_crm__activities.sql",
        "    from source\n)",
        "    from source\n    where activity_id not like '%1'\n)",
    ),
    "macro maps demos to meetings": (
        "macros/activity_types.sql",
        "activity_type as mapped_activity_type",
        "replace(activity_type, 'demo', 'meeting') as mapped_activity_type",
    ),
    "seed maps demos to meetings": (
        "seeds/activity_types.csv",
        "type,demo,demo",
        "type,demo,meeting",
    ),
    "staging column doubles amounts": (
        "models/staging/crm/stg_crm__opportunities.sql",
        "        amount,\n",
        "        amount * 2 as amount,\n",
    ),
}
SELECTIONS: list[list[str] | None] = [
    None,
    None,
    ["kpi_sales_effort"],
    ["kpi_lead_conversion"],
    ["kpi_lead_response_time"],
    ["+kpi_lead_response_time"],
    ["int_activities_aggregated"],
    ["int_leads_enriched", "kpi_stage_duration"],
    ["stg_crm__activities+"],
]
VARS: list[dict[str, str]] = [
    {},
    {},
    {"start_month": "2026-01-01"},
    {"end_month": "2026-02-01"},
    {"start_month": "2025-12-01", "end_month": "2026-03-01"},
]
ACTIVITY_TYPES = ["call", " Email", "MEETING", "demo", "lunch"]
STAGES = ["prospecting", "qualification", "proposal", "negotiation", "mystery"]


def read_export(folder: Path) -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            tables[path.stem] = (list(reader.fieldnames or []), list(reader))
    return tables


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    """Write the file unless it already holds these bytes (an unchanged file
    keeps its inode and time stamps, as in an export folder)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def warehouse_tables(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every relation of the compared schemas: its rows without `_load_id`, sorted."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} and table_name <> 'rejected_rows' order by 1, 2"
        ).fetchall()
        tables = {}
        for schema, name in relations:
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                ).fetchall()
                if c != "_load_id"
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f'select {select} from "{schema}"."{name}"').fetchall()
            tables[f"{schema}.{name}"] = sorted(rows, key=repr)
        return tables
    finally:
        con.close()


class IncrementalEqualsClean(RuleBasedStateMachine):
    """The warehouse built step by step against a clean build of each state."""

    def __init__(self) -> None:
        super().__init__()
        self.work = Path(tempfile.mkdtemp(prefix="kpi-stateful-"))
        self.project_dir = self.work / "project"
        for part in PROJECT_PARTS:
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(source, self.project_dir / part)
            elif source.exists():
                (self.project_dir / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, self.project_dir / part)
        self.export = self.work / "export"
        self.export.mkdir()
        self.tables = read_export(FIXTURE)
        self.parts: dict[str, tuple[str, list[dict[str, str]]]] = {}  # file -> (table, rows)
        self.vars: dict[str, str] = {}
        self.edits: set[str] = set()
        self.counter = 0
        self.log: list[str] = []
        self.settled = False

    def teardown(self) -> None:
        try:
            if self.log:
                self.build(None)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- writing the state ---------------------------------------------------

    def write(self) -> None:
        for table, (columns, rows) in self.tables.items():
            write_csv(self.export / f"{table}.csv", columns, rows)
        for path in self.export.glob("*.*.csv"):
            if path.name not in self.parts:
                path.unlink()
        for name, (table, rows) in self.parts.items():
            write_csv(self.export / name, self.tables[table][0], rows)

    def project(self, warehouse: Path) -> Project:
        return Project.load(
            self.project_dir,
            warehouse=warehouse,
            raw_dir=self.export,
            vars=self.vars,
            target_path=warehouse.parent / "target",
            reporter=Reporter(stream=io.StringIO()),
        )

    def build(self, selection: list[str] | None) -> None:
        self.write()
        self.log.append(f"build -s {selection}" if selection else "build")
        incremental = self.work / "incremental" / "w.duckdb"
        project = self.project(incremental)
        with self.clock():
            result = project.build(select=selection or ())
        selected = {n.unique_id for n in project.select(selection or ())}
        failures = [
            (r.name, r.message)
            for r in result.results
            if r.status in ("error", "fail")
            # a test that reads a relation outside a partial selection may
            # fail while that relation is stale; every other node must pass
            and not (selection and not set(project.nodes[r.unique_id].depends_on) <= selected)
        ]
        if failures and os.environ.get("KPI_STATEFUL_DUMP"):
            shutil.copytree(self.work, os.environ["KPI_STATEFUL_DUMP"], dirs_exist_ok=True)
        assert not failures, (self.log, failures)
        if selection:
            return
        clean = self.work / "clean" / "w.duckdb"
        for stale in (clean, clean.with_name("w.duckdb.wal")):
            stale.unlink(missing_ok=True)
        assert self.project(clean).build().exit_code == 0, self.log
        built, expected = warehouse_tables(incremental), warehouse_tables(clean)
        assert built.keys() == expected.keys(), self.log
        for relation, rows in expected.items():
            assert built[relation] == rows, (self.log, relation)

    def clock(self) -> contextlib.AbstractContextManager[object]:
        """With `settled`, every file counts as written long before it is
        opened, on a file system that keeps a ctime, so that unchanged files
        are known by their stat rather than their bytes (a step lasts longer
        than a file system's clock tick)."""
        stack = contextlib.ExitStack()
        if self.settled:
            stack.enter_context(mock.patch.object(raw_files, "SETTLED_NS", -(10**12)))
            stack.enter_context(
                mock.patch.object(raw_files, "filesystem_type", lambda device: "ext4")
            )
        return stack

    def rows(self, table: str) -> list[dict[str, str]]:
        return self.tables[table][1]

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:03d}"

    # -- steps ----------------------------------------------------------------

    @initialize(settled=st.booleans())
    def first_build(self, settled: bool) -> None:
        self.settled = settled
        self.log.append(f"settled={settled}")
        self.build(None)

    @rule(
        table=st.sampled_from(["activities", "leads", "opportunity_stage_history"]),
        count=st.integers(1, 3),
        data=st.data(),
        selection=st.sampled_from(SELECTIONS),
    )
    def append_part_file(
        self, table: str, count: int, data: st.DataObject, selection: list[str] | None
    ) -> None:
        owners = [u["user_id"] for u in self.rows("users")] + ["ghost"]
        deals = [o["opportunity_id"] for o in self.rows("opportunities")] or ["o1"]
        leads = [lead["lead_id"] for lead in self.rows("leads")]
        day = st.integers(1, 28)
        month = st.sampled_from(["2025-12", "2026-01", "2026-02", "2026-03", "2026-04"])

        def moment() -> str:
            return (
                f"{data.draw(month)}-{data.draw(day):02d} {data.draw(st.integers(0, 23)):02d}:30:00"
            )

        rows = []
        for _ in range(count):
            if table == "activities":
                rows.append(
                    {
                        "activity_id": self.new_id("xa"),
                        "owner_id": data.draw(st.sampled_from(owners)),
                        "activity_type": data.draw(st.sampled_from(ACTIVITY_TYPES)),
                        "occurred_at": moment(),
                        "lead_id": data.draw(st.sampled_from(["", *leads])),
                        "opportunity_id": data.draw(st.sampled_from(["", *deals])),
                        "account_id": "",
                    }
                )
            elif table == "leads":
                lead = dict(self.rows("leads")[0])
                lead.update(
                    lead_id=self.new_id("XL"),
                    created_at=moment(),
                    owner_id=data.draw(st.sampled_from(owners)),
                    status="new",
                    mql_at="",
                    sql_at="",
                    converted_at="",
                    converted_account_id="",
                    converted_opportunity_id=data.draw(st.sampled_from(["", *deals])),
                )
                rows.append(lead)
            else:
                rows.append(
                    {
                        "opportunity_id": data.draw(st.sampled_from(deals)),
                        "stage_name": data.draw(st.sampled_from(STAGES)),
                        "entered_at": moment() + f".{self.new_id('')}",
                    }
                )
        name = f"{table}.p{self.new_id('')}.csv"
        self.parts[name] = (table, rows)
        self.log.append(f"append {name}: {rows}")
        self.build(selection)

    @rule(
        index=st.integers(0, 50),
        action=st.sampled_from(
            ["amount", "won", "lost", "reopen", "future close", "owner", "delete"]
        ),
        data=st.data(),
        selection=st.sampled_from(SELECTIONS),
    )
    def edit_deal(
        self, index: int, action: str, data: st.DataObject, selection: list[str] | None
    ) -> None:
        deals = self.rows("opportunities")
        if not deals:
            return
        deal = deals[index % len(deals)]
        owners = [u["user_id"] for u in self.rows("users")] + ["ghost"]
        if action == "amount":
            deal["amount"] = data.draw(st.sampled_from(["", "0", "120.5", "999.9999", "-10"]))
        elif action in ("won", "lost", "future close"):
            won = action == "won" or (action == "future close" and data.draw(st.booleans()))
            deal.update(
                stage_name="closed_won" if won else "closed_lost",
                is_closed="true",
                is_won=str(won).lower(),
                close_date="2027-03-15"
                if action == "future close"
                else data.draw(st.sampled_from(["2026-01-31", "2026-02-01", "2026-03-10"])),
            )
        elif action == "reopen":
            deal.update(stage_name="proposal", is_closed="false", is_won="false", close_date="")
        elif action == "owner":
            deal["owner_id"] = data.draw(st.sampled_from(owners))
        else:
            deals.remove(deal)
        self.log.append(f"deal {deal['opportunity_id']}: {action}")
        self.build(selection)

    @rule(
        index=st.integers(0, 50),
        action=st.sampled_from(["team", "quota", "drop quota", "end subscription", "terminate"]),
        selection=st.sampled_from(SELECTIONS),
    )
    def edit_people_and_money(self, index: int, action: str, selection: list[str] | None) -> None:
        if action in ("team", "terminate"):
            users = [u for u in self.rows("users") if u["role"] == "rep"]
            user = users[index % len(users)]
            if action == "team":
                user["team_id"] = "T2" if user["team_id"] == "T1" else "T1"
            else:
                user["terminated_at"] = "" if user["terminated_at"] else "2026-02-10"
        elif action in ("quota", "drop quota"):
            quotas = self.rows("quotas")
            if not quotas:
                return
            quota = quotas[index % len(quotas)]
            if action == "quota":
                quota["quota_amount"] = str(float(quota["quota_amount"] or 0) + 250)
            else:
                quotas.remove(quota)
        else:
            subscriptions = self.rows("subscriptions")
            if not subscriptions:
                return
            subscriptions[index % len(subscriptions)]["ended_at"] = "2026-02-01"
        self.log.append(f"{action} #{index}")
        self.build(selection)

    @rule(index=st.integers(0, 50), rename=st.booleans(), selection=st.sampled_from(SELECTIONS))
    def remove_or_rename_part_file(
        self, index: int, rename: bool, selection: list[str] | None
    ) -> None:
        if not self.parts:
            return
        name = sorted(self.parts)[index % len(self.parts)]
        table, rows = self.parts.pop(name)
        if rename:  # the same rows under a name that sorts first
            self.parts[f"{table}.a{self.new_id('')}.csv"] = (table, rows)
        self.log.append(f"{'rename' if rename else 'remove'} {name}")
        self.build(selection)

    @rule(choice=st.sampled_from(VARS), selection=st.sampled_from(SELECTIONS))
    def set_vars(self, choice: dict[str, str], selection: list[str] | None) -> None:
        self.vars = dict(choice)
        self.log.append(f"vars {choice}")
        self.build(selection)

    @rule(edit=st.sampled_from(sorted(EDITS)), selection=st.sampled_from(SELECTIONS))
    def edit_project(self, edit: str, selection: list[str] | None) -> None:
        path, text, replacement = EDITS[edit]
        file = self.project_dir / path
        content = file.read_text(encoding="utf-8")
        if edit in self.edits:
            self.edits.remove(edit)
            file.write_text(content.replace(replacement, text), encoding="utf-8")
        else:
            self.edits.add(edit)
            assert text in content, f"{path} no longer holds the text this edit replaces"
            file.write_text(content.replace(text, replacement), encoding="utf-8")
        self.log.append(f"toggle edit: {edit}")
        self.build(selection)

    @rule()
    def failed_load_then_fixed(self) -> None:
        bad = {
            "activity_id": self.new_id("bad"),
            "owner_id": "r1",
            "activity_type": "call",
            "occurred_at": "not a time",
            "lead_id": "",
            "opportunity_id": "",
            "account_id": "",
        }
        self.parts["activities.zz-bad.csv"] = ("activities", [bad])
        self.write()
        incremental = self.work / "incremental" / "w.duckdb"
        before = warehouse_tables(incremental) if incremental.exists() else None
        with pytest.raises(LoadError):
            self.project(incremental).build()
        if before is not None:
            assert warehouse_tables(incremental) == before, "a failed load changed tables"
        del self.parts["activities.zz-bad.csv"]
        self.log.append("failed load, fixed")


IncrementalEqualsClean.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[
        p for p in Phase if os.environ.get("KPI_STATEFUL_SHRINK", "1") == "1" or p != Phase.shrink
    ],
)
test_incremental_build_equals_clean_build = IncrementalEqualsClean.TestCase
