"""Every model of the project is documented: its description, and every column
it produces, in order and with its type, in the yml next to it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from runner.project import Project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(demo_build: tuple[Project, Path]) -> tuple[Project, Path]:
    return demo_build


def models(project: Project) -> list:
    return [n for n in project.nodes.values() if n.is_model]


def test_every_model_has_a_description(built) -> None:
    project, _ = built
    assert [m.name for m in models(project) if not m.description.strip()] == []


def test_every_column_is_documented_in_order_with_its_type(built) -> None:
    project, warehouse = built
    con = duckdb.connect(str(warehouse), read_only=True)
    problems = []
    for model in models(project):
        if model.config.materialized == "ephemeral":
            continue
        actual = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [model.relation.schema, model.relation.identifier],
        ).fetchall()
        # the demo has no reporting currency: the money marts leave currency_code out
        documented = [
            (c.name, (c.data_type or "").upper())
            for c in model.columns.values()
            if not c.meta.get("reporting_currency_only")
        ]
        if [name for name, _ in actual] != [name for name, _ in documented]:
            problems.append(f"{model.name}: columns {actual} but yml {documented}")
            continue
        for (name, kind), (_, doc_kind) in zip(actual, documented, strict=True):
            if not kind.upper().startswith(doc_kind.split("(")[0]):
                problems.append(f"{model.name}.{name}: {kind}, yml says {doc_kind}")
    assert problems == []


def test_every_column_has_a_description(built) -> None:
    project, _ = built
    missing = [
        f"{m.name}.{c.name}"
        for m in models(project)
        for c in m.columns.values()
        if not c.description.strip()
    ]
    assert missing == []
