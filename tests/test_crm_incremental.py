"""A generated Salesforce Data Export, built incrementally a week later,
equals a clean build of that week's export.

`kpi generate --crm salesforce` writes the first week. The next week
rewrites every file, as a weekly Data Export does, with the changes a sales
team makes in a week, drawn at random: deals won, lost or re-amounted, a
deal deleted, new tasks, events and leads dated after the export, a lead
converted. After the week's incremental build every relation of the raw,
staging, intermediate and marts schemas equals a clean build of that export
(`_load_id` aside): the machinery of `test_incremental_stateful.py`, on the
CRM's own shape.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest
from test_incremental_stateful import ROOT, warehouse_tables

from runner import Project
from runner.crm.generate_crm import write_crm_export

DATA_EXPORT = "format csv, header true, force_quote *, new_line '\\r\\n'"


def rewrite(path: Path, sql: str, options: str = DATA_EXPORT) -> None:
    """Write `path` again from `sql` over its rows (`t`), in the Data Export's
    shape unless `options` says another."""
    temporary = path.with_name(path.name + ".tmp")
    with duckdb.connect() as con:
        con.execute(
            f"create view t as select * from read_csv('{path}', all_varchar = true, header = true)"
        )
        con.execute(f"copy ({sql}) to '{temporary}' ({options})")
    temporary.replace(path)


def next_week(export: Path, week: int, rng: random.Random) -> None:
    """Every file written again; a random handful of rows changed or added,
    stamped one week after the newest SystemModstamp."""
    for path in export.glob("*.csv"):
        path.write_bytes(path.read_bytes())
    with duckdb.connect() as con:
        newest = con.execute(
            f"select max(cast(SystemModstamp as timestamp)) + interval {7 * week} day "
            f"from read_csv('{export / 'Opportunity.csv'}', all_varchar = true)"
        ).fetchone()
    stamp = f"'{newest[0] if newest else '2026-01-01'}'"
    ids = [f"%{rng.randrange(1, 300):03d}AAA" for _ in range(6)]
    won, lost, amount, deleted, converted, copied = ids
    rewrite(
        export / "Opportunity.csv",
        f"""
        select * replace (
            case when Id like '{won}' and IsClosed = '0' then 'closed_won'
                 when Id like '{lost}' and IsClosed = '0' then 'closed_lost'
                 else StageName end as StageName,
            case when Id like '{won}' and IsClosed = '0' then '5'
                 when Id like '{lost}' and IsClosed = '0' then '6'
                 else StageSortOrder end as StageSortOrder,
            case when Id like '{won}' or Id like '{lost}' then '1' else IsClosed end as IsClosed,
            case when Id like '{won}' and IsClosed = '0' then '1' else IsWon end as IsWon,
            case when (Id like '{won}' or Id like '{lost}') and IsClosed = '0'
                 then cast(cast({stamp} as date) as varchar) else CloseDate end as CloseDate,
            case when Id like '{amount}' then cast(cast(Amount as decimal(18, 2)) + {week}
                 as varchar) else Amount end as Amount,
            case when Id like '{deleted}' then '1' else IsDeleted end as IsDeleted,
            case when Id like '{won}' or Id like '{lost}' or Id like '{amount}'
                 or Id like '{deleted}' then {stamp}
                 else SystemModstamp end as SystemModstamp
        )
        from t
        """,
    )
    history = export / "OpportunityHistory.csv"
    assert history.read_text().splitlines()[0] == (
        '"Id","OpportunityId","CreatedDate","StageName","IsDeleted","SystemModstamp"'
    )
    rewrite(
        history,
        f"""
        select * from t
        union all
        select '008W{week:02d}' || right(o.Id, 12), o.Id, {stamp}, o.StageName, '0', {stamp}
        from read_csv('{export / "Opportunity.csv"}', all_varchar = true) as o
        where o.SystemModstamp = {stamp} and o.IsDeleted = '0'
        """,
    )
    for name, prefix in (("Task", "00T"), ("Event", "00U")):
        moved = "CompletedDateTime" if name == "Task" else "ActivityDateTime"
        rewrite(
            export / f"{name}.csv",
            f"""
            select * from t
            union all
            select * replace (
                '{prefix}W{week:02d}' || right(Id, 12) as Id, {stamp} as {moved},
                {stamp} as CreatedDate, {stamp} as SystemModstamp
            )
            from t where Id like '%{copied}'
            """,
        )
    rewrite(
        export / "Lead.csv",
        f"""
        select * replace (
            case when Id like '{converted}' and IsConverted = '0' then '1' else IsConverted end
                as IsConverted,
            case when Id like '{converted}' and IsConverted = '0' then cast(cast({stamp} as date)
                as varchar) else ConvertedDate end as ConvertedDate,
            case when Id like '{converted}' and IsConverted = '0' then '006' || right(Id, 15)
                else ConvertedOpportunityId end as ConvertedOpportunityId,
            case when Id like '{converted}' then {stamp} else SystemModstamp end
                as SystemModstamp
        )
        from t
        union all
        select * replace ('00QW{week:02d}' || right(Id, 12) as Id, {stamp} as CreatedDate,
            {stamp} as SystemModstamp, '0' as IsConverted, '' as ConvertedDate,
            '' as ConvertedAccountId, '' as ConvertedOpportunityId)
        from t where Id like '%{copied}'
        """,
    )


def build(export: Path, work: Path) -> Path:
    warehouse = work / "w.duckdb"
    project = Project.load(ROOT, warehouse=warehouse, raw_dir=export, target_path=work / "t")
    result = project.build()
    assert result.exit_code == 0, result.summary
    return warehouse


@pytest.mark.parametrize("seed", [1])
def test_a_weekly_salesforce_export_built_incrementally_equals_a_clean_build(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    export = tmp_path / "export"
    write_crm_export(export, "salesforce", opportunities=300, months=3)
    incremental = build(export, tmp_path / "incremental")
    next_week(export, 1, rng)
    incremental = build(export, tmp_path / "incremental")
    with duckdb.connect(str(incremental), read_only=True) as con:
        changes = con.execute(
            "select relation, inserted_rows + updated_rows from _kpi.table_changes "
            "where load_id = (select max(load_id) from _kpi.table_changes)"
        ).fetchall()
    # the week's load compared every rewritten file and took only what changed
    changed = dict(changes)
    assert changed["raw.Opportunity"] >= 2 and changed["raw.Task"] >= 1, changes
    assert changed["raw.Lead"] >= 1 and changed["raw.OpportunityHistory"] >= 1, changes
    assert "raw.Account" not in changed, changes
    clean = build(export, tmp_path / "clean")
    got, expected = warehouse_tables(incremental), warehouse_tables(clean)
    assert got.keys() == expected.keys()
    for relation in expected:
        assert got[relation] == expected[relation], relation


HUBSPOT_CSV = "format csv, header true"


def hubspot_table(path: Path, sql: str) -> None:
    """Write the replicated table `path` again from `sql` over its rows (`t`)."""
    rewrite(path, sql, HUBSPOT_CSV)


def hubspot_next_week(export: Path, rng: random.Random) -> None:
    """A week of HubSpot changes, as a replication re-sync writes them: every
    table written again; an open deal won (a new active `deal_stage` row), a
    deal re-amounted, a deal soft-deleted (`is_deleted`), a contact become a
    customer, one engagement copied as a new call with its contact and deal,
    and one contact association removed (a raw table that loses a row)."""
    with duckdb.connect() as con:
        newest = con.execute(
            f"select max(cast(property_createdate as timestamp)) + interval 7 day "
            f"from read_csv('{export / 'deal.csv'}', all_varchar = true)"
        ).fetchone()
        open_deals = [
            deal_id
            for (deal_id,) in con.execute(
                f"select deal_id from read_csv('{export / 'deal.csv'}', all_varchar = true) "
                "where deal_pipeline_stage_id not in ('closed_won', 'closed_lost') "
                "and property_amount is not null order by 1"
            ).fetchall()
        ]
        calls = [
            engagement_id
            for (engagement_id,) in con.execute(
                f"select c.engagement_id from read_csv('{export / 'engagement_call.csv'}', "
                "all_varchar = true) as c semi join read_csv("
                f"'{export / 'engagement_contact.csv'}', all_varchar = true) as a "
                "on a.engagement_id = c.engagement_id order by 1"
            ).fetchall()
        ]
        associations = con.execute(
            f"select engagement_id, contact_id "
            f"from read_csv('{export / 'engagement_contact.csv'}', all_varchar = true) "
            "order by 1, 2"
        ).fetchall()
    stamp = f"'{newest[0]}'"
    won, amount, deleted = rng.sample(open_deals, 3)
    call = rng.choice(calls)
    gone_engagement, gone_contact = rng.choice(associations)
    for path in export.glob("*.csv"):
        path.write_bytes(path.read_bytes())
    hubspot_table(
        export / "deal.csv",
        f"""
        select * replace (
            case when deal_id = '{won}' then 'closed_won' else deal_pipeline_stage_id end
                as deal_pipeline_stage_id,
            case when deal_id = '{won}' then {stamp} else property_closedate end
                as property_closedate,
            case when deal_id = '{amount}' then cast(cast(property_amount as decimal(18, 2))
                + 7 as varchar) else property_amount end as property_amount,
            case when deal_id = '{deleted}' then 'true' else is_deleted end as is_deleted
        )
        from t
        """,
    )
    hubspot_table(
        export / "deal_stage.csv",
        f"select * from t union all select '{won}', {stamp}, 'closed_won', 'true'",
    )
    hubspot_table(
        export / "contact.csv",
        f"""
        select * replace (
            case when id = (select min(id) from t where property_lifecyclestage <> 'customer')
                then 'customer' else property_lifecyclestage end as property_lifecyclestage,
            case when id = (select min(id) from t where property_lifecyclestage <> 'customer')
                then {stamp} else property_hs_lifecyclestage_customer_date end
                as property_hs_lifecyclestage_customer_date
        )
        from t
        """,
    )
    new_call = "ACTW0001"
    for name, key in (
        ("engagement", "id"),
        ("engagement_call", "engagement_id"),
        ("engagement_deal", "engagement_id"),
    ):
        moved = (
            f", {stamp} as property_hs_timestamp, {stamp} as property_hs_createdate"
            if name == "engagement_call"
            else ""
        )
        hubspot_table(
            export / f"{name}.csv",
            f"select * from t union all "
            f"select * replace ('{new_call}' as {key}{moved}) from t where {key} = '{call}'",
        )
    hubspot_table(
        export / "engagement_contact.csv",
        f"""
        select * from t
        where not (engagement_id = '{gone_engagement}' and contact_id = '{gone_contact}')
        union all
        select '{new_call}', contact_id from t where engagement_id = '{call}'
        """,
    )


@pytest.mark.parametrize("seed", [3])
def test_a_hubspot_resync_built_incrementally_equals_a_clean_build(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    export = tmp_path / "export"
    write_crm_export(export, "hubspot", opportunities=200, months=3)
    incremental = build(export, tmp_path / "incremental")
    hubspot_next_week(export, rng)
    incremental = build(export, tmp_path / "incremental")
    with duckdb.connect(str(incremental), read_only=True) as con:
        changes = con.execute(
            "select relation, inserted_rows, updated_rows, deleted_rows from _kpi.table_changes "
            "where load_id = (select max(load_id) from _kpi.table_changes)"
        ).fetchall()
    changed = {relation: rows for relation, *rows in changes}
    # deal: won + re-amounted = 2 updated rows, the soft-deleted one dropped by
    # the load (SOURCES.md) = 1 deleted; one new stage row; one association
    # gone and one added; untouched tables change nothing
    assert changed["raw.deal"] == [0, 2, 1], changes
    assert changed["raw.deal_stage"] == [1, 0, 0], changes
    assert changed["raw.engagement_contact"] == [1, 0, 1], changes
    assert "raw.company" not in changed and "raw.owner" not in changed, changes
    clean = build(export, tmp_path / "clean")
    got, expected = warehouse_tables(incremental), warehouse_tables(clean)
    assert got.keys() == expected.keys()
    for relation in expected:
        assert got[relation] == expected[relation], relation
