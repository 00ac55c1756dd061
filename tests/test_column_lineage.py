"""runner/column_lineage.py on small queries: a table of cases (query, output
column, the raw columns it comes from), then the walk across models."""

from __future__ import annotations

import pytest

from runner.column_lineage import LineageError, project_lineage, query_lineage, trace

SCHEMA = {
    "raw": {
        "deals": {"id": "int", "owner_id": "int", "amount": "double", "is_won": "bool"},
        "users": {"id": "int", "team_id": "int", "name": "varchar"},
        "old_deals": {"id": "int", "owner_id": "int", "amount": "double", "is_won": "bool"},
    }
}

CASES = [
    ("a plain column", "select amount from raw.deals", "amount", {"raw.deals.amount"}),
    (
        "an expression of two columns",
        "select amount * case when is_won then 1 else 0 end as won_amount from raw.deals",
        "won_amount",
        {"raw.deals.amount", "raw.deals.is_won"},
    ),
    (
        "a join picks each side's column",
        "select d.id, u.team_id from raw.deals as d left join raw.users as u on d.owner_id = u.id",
        "team_id",
        {"raw.users.team_id"},
    ),
    (
        "a join condition makes no value",
        "select d.amount from raw.deals as d inner join raw.users as u on d.owner_id = u.id",
        "amount",
        {"raw.deals.amount"},
    ),
    (
        "through two CTEs with renames",
        "with a as (select owner_id as rep, amount as value from raw.deals), "
        "b as (select rep, value * 2 as doubled from a) select doubled from b",
        "doubled",
        {"raw.deals.amount"},
    ),
    (
        "select star from a table the schema knows",
        "with a as (select * from raw.users) select name from a",
        "name",
        {"raw.users.name"},
    ),
    (
        "select star from a table the schema does not know",
        "with a as (select * from raw.unknown) select whatever from a",
        "whatever",
        {"raw.unknown.whatever"},
    ),
    (
        "a union follows every branch by position",
        "select id, amount as value from raw.deals union all "
        "select id, amount * 1.1 from raw.old_deals",
        "value",
        {"raw.deals.amount", "raw.old_deals.amount"},
    ),
    (
        "union by name follows the branch that has the column",
        "with a as (select id, owner_id from raw.deals), "
        "b as (select id, team_id from raw.users), "
        "u as (select * from a union all by name select * from b) select team_id from u",
        "team_id",
        {"raw.users.team_id"},
    ),
    (
        "a window function counts what it sums and orders by",
        "select sum(amount) over (partition by owner_id order by id) as running from raw.deals",
        "running",
        {"raw.deals.amount", "raw.deals.owner_id", "raw.deals.id"},
    ),
    (
        "a named window",
        "select row_number() over w as n from raw.deals window w as (partition by owner_id)",
        "n",
        {"raw.deals.owner_id"},
    ),
    (
        "count(*) comes from the filters that chose its rows",
        "with won as (select owner_id from raw.deals where is_won) "
        "select owner_id, count(*) as won_deals from won group by owner_id",
        "won_deals",
        {"raw.deals.is_won"},
    ),
    (
        "an aggregate filter counts",
        "select count(*) filter (where is_won) as won from raw.deals",
        "won",
        {"raw.deals.is_won"},
    ),
    (
        "a scalar subquery",
        "select id, (select max(amount) from raw.old_deals) as best from raw.deals",
        "best",
        {"raw.old_deals.amount"},
    ),
    (
        "a derived table",
        "select t.total from (select owner_id, sum(amount) as total from raw.deals "
        "group by owner_id) as t",
        "total",
        {"raw.deals.amount"},
    ),
    ("a constant comes from nothing", "select 'company' as level from raw.deals", "level", set()),
    (
        "what a rendered macro leaves (safe_divide)",
        "with s as (select count(*) filter (where is_won) as won, count(*) as closed "
        "from raw.deals where amount > 0) "
        "select cast(won as double) / nullif(closed, 0) as win_rate from s",
        "win_rate",
        {"raw.deals.is_won", "raw.deals.amount"},
    ),
]


@pytest.mark.parametrize(
    ("sql", "column", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_query_lineage(sql: str, column: str, expected: set[str]) -> None:
    found = query_lineage(sql, SCHEMA)[column]
    assert {f"{table}.{name}" for table, name in found} == expected


def test_every_output_column_is_listed_in_order() -> None:
    lineage = query_lineage("select id, amount, 1 as one from raw.deals", SCHEMA)
    assert list(lineage) == ["id", "amount", "one"]


def test_a_query_that_does_not_parse_is_a_lineage_error() -> None:
    with pytest.raises(LineageError):
        query_lineage("select from from", SCHEMA)


def test_project_lineage_follows_models_down_to_the_sources() -> None:
    # raw.deals -> stg_deals -> int_won -> kpi_won (the rendered SQL of three models)
    queries = {
        "model.stg_deals": "select id, owner_id, is_won, amount from raw.deals",
        "model.int_won": "with won as (select * from main.stg_deals where is_won) "
        "select owner_id, count(*) as won_deals, sum(amount) as won_amount from won "
        "group by owner_id",
        "model.kpi_won": "select won_amount / won_deals as avg_deal from main.int_won",
    }
    schema = {
        **SCHEMA,
        "main": {
            "stg_deals": {"id": "int", "owner_id": "int", "is_won": "bool", "amount": "double"},
            "int_won": {"owner_id": "int", "won_deals": "bigint", "won_amount": "double"},
        },
    }
    relations = {
        "raw.deals": "source.crm.deals",
        "main.stg_deals": "model.stg_deals",
        "main.int_won": "model.int_won",
    }
    lineage = project_lineage(queries, relations, schema)
    assert lineage.errors == {}
    assert lineage.edges["model.kpi_won"]["avg_deal"] == [
        ("model.int_won", "won_amount"),
        ("model.int_won", "won_deals"),
    ]
    assert trace(lineage.edges, "model.kpi_won", "avg_deal") == {
        "model.int_won": ["won_amount", "won_deals"],
        "model.stg_deals": ["amount", "is_won"],
        "source.crm.deals": ["amount", "is_won"],
    }
    # with the answers of the first time as cache, nothing is parsed again
    assert len(lineage.cache) == 3
    broken = {uid: "select from from" for uid in queries}
    keys = set(lineage.cache)
    again = project_lineage(queries, relations, schema, cache=lineage.cache)
    assert again.edges == lineage.edges and set(again.cache) == keys
    assert project_lineage(broken, relations, schema, cache=lineage.cache).errors


def test_a_model_that_cannot_be_walked_is_reported_not_fatal() -> None:
    lineage = project_lineage({"model.bad": "select from from"}, {}, SCHEMA)
    assert "model.bad" in lineage.errors
    assert lineage.edges == {}
