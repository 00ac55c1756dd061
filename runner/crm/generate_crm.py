"""Realistic Salesforce and HubSpot exports, derived from the contract generator.

`write_crm_export(out_dir, "salesforce", opportunities=1_000_000)` generates
the contract export (`runner.crm.generate`, same seed, same data) and writes
the same deals, leads and activities in the shape the CRM writes them: a
Salesforce weekly Data Export (one CSV per object named by its API name,
every value quoted, CRLF, `000000000000000AAA` for empty references) or, as
Parquet, the snake_case copies replication tools write; HubSpot objects as
replicated tables. Deterministic: the same arguments give the same bytes.

What the CRM cannot hold is lost on the way, as it would be in real data:
Salesforce leads carry no MQL / SQL dates, HubSpot has no quotas,
subscriptions, managers or demos (a demo is a meeting there).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import duckdb

from runner.crm.export_contract import CONTRACT
from runner.crm.files import CENTS
from runner.crm.generate import generate_export
from runner.errors import ProjectError
from runner.nodes import quote_literal

EMPTY_REFERENCE = "000000000000000AAA"


def sf_id(prefix: str, column: str) -> str:
    """An 18-character Salesforce-style id from a contract id (`O0042` ->
    `006000000000042AAA`), keeping references consistent across objects."""
    digits = f"regexp_replace({column}, '[^0-9]', '', 'g')"
    return f"case when {column} is not null then '{prefix}' || lpad({digits}, 12, '0') || 'AAA' end"


def _row_number(order: str) -> str:
    return f"cast(row_number() over (order by {order}) as varchar)"


def _ref(prefix: str, column: str) -> str:
    return f"coalesce({sf_id(prefix, column)}, '{EMPTY_REFERENCE}')"


SALESFORCE: Mapping[str, str] = {
    "User": f"""
        select {sf_id("005", "user_id")} as Id,
            split_part(full_name, ' ', 1) as FirstName,
            nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '') as LastName,
            full_name as Name, email as Email, {sf_id("00E", "team_id")} as UserRoleId,
            {_ref("005", "manager_id")} as ManagerId, 'Standard' as UserType,
            case when terminated_at is null then 1 else 0 end as IsActive,
            cast(hired_at as timestamp) as CreatedDate,
            cast(coalesce(terminated_at, hired_at) as timestamp) as LastModifiedDate,
            (select export_time from export_time) as SystemModstamp
        from users""",
    "UserRole": f"select {sf_id('00E', 'team_id')} as Id, team_name as Name from teams",
    "Account": f"""
        select {sf_id("001", "account_id")} as Id, 0 as IsDeleted, account_name as Name,
            industry as Industry, {_ref("005", "owner_id")} as OwnerId,
            created_at as CreatedDate, created_at as SystemModstamp
        from accounts""",
    "OpportunityStage": f"""
        select {sf_id("01J", "cast(stage_order as varchar)")} as Id, stage_name as ApiName,
            stage_name as MasterLabel, 1 as IsActive, stage_order as SortOrder,
            is_closed as IsClosed, is_won as IsWon,
            cast(round(probability * 100) as integer) as DefaultProbability
        from pipeline_stages""",
    "Opportunity": f"""
        select {sf_id("006", "o.opportunity_id")} as Id, 0 as IsDeleted,
            {sf_id("001", "o.account_id")} as AccountId, o.opportunity_name as Name,
            case o.opportunity_type when 'new_business' then 'New Business'
                when 'expansion' then 'Expansion' when 'renewal' then 'Renewal' end as Type,
            o.stage_name as StageName, s.stage_order as StageSortOrder, o.amount as Amount,
            coalesce(o.close_date, cast(o.created_at as date) + 45) as CloseDate,
            o.is_closed as IsClosed, o.is_won as IsWon, {sf_id("005", "o.owner_id")} as OwnerId,
            o.created_at as CreatedDate, o.created_at as SystemModstamp
        from opportunities as o
        left join pipeline_stages as s on s.stage_name = o.stage_name""",
    "OpportunityHistory": f"""
        select {sf_id("008", _row_number("opportunity_id, entered_at"))} as Id,
            {sf_id("006", "opportunity_id")} as OpportunityId, entered_at as CreatedDate,
            stage_name as StageName, 0 as IsDeleted, entered_at as SystemModstamp
        from opportunity_stage_history""",
    "Lead": f"""
        select {sf_id("00Q", "lead_id")} as Id, 0 as IsDeleted,
            {_ref("005", "owner_id")} as OwnerId, lead_source as LeadSource,
            case when status = 'converted' then 'Closed - Converted'
                else upper(status[1]) || status[2:] end as Status,
            case when status = 'converted' then 1 else 0 end as IsConverted,
            cast(converted_at as date) as ConvertedDate,
            {sf_id("001", "converted_account_id")} as ConvertedAccountId,
            {sf_id("006", "converted_opportunity_id")} as ConvertedOpportunityId,
            created_at as CreatedDate, created_at as SystemModstamp
        from leads""",
    "Task": f"""
        select {sf_id("00T", "activity_id")} as Id, {_ref("00Q", "lead_id")} as WhoId,
            coalesce({sf_id("006", "opportunity_id")}, {sf_id("001", "account_id")},
                '{EMPTY_REFERENCE}') as WhatId,
            {sf_id("001", "account_id")} as AccountId, {_ref("005", "owner_id")} as OwnerId,
            case kind when 'call' then 'Call' when 'email' then 'Email' end as Type,
            case kind when 'call' then 'Call' when 'email' then 'Email' else 'Task' end
                as TaskSubtype,
            1 as IsClosed, occurred_at as CompletedDateTime, occurred_at as CreatedDate,
            0 as IsDeleted, occurred_at as SystemModstamp
        from typed_activities where kind not in ('meeting', 'demo')""",
    "Event": f"""
        select {sf_id("00U", "activity_id")} as Id, {_ref("00Q", "lead_id")} as WhoId,
            coalesce({sf_id("006", "opportunity_id")}, {sf_id("001", "account_id")},
                '{EMPTY_REFERENCE}') as WhatId,
            {sf_id("001", "account_id")} as AccountId, {_ref("005", "owner_id")} as OwnerId,
            case kind when 'demo' then 'Demo' else 'Meeting' end as Type, 0 as IsChild,
            occurred_at as ActivityDateTime, cast(occurred_at as date) as ActivityDate,
            occurred_at as CreatedDate, 0 as IsDeleted, occurred_at as SystemModstamp
        from typed_activities where kind in ('meeting', 'demo')""",
    "ForecastingQuota": f"""
        select {sf_id("0J9", _row_number("user_id, month"))} as Id,
            {sf_id("005", "user_id")} as QuotaOwnerId, month as StartDate,
            '{EMPTY_REFERENCE}' as PeriodId, quota_amount as QuotaAmount
        from quotas""",
    "Contract": f"""
        select {sf_id("800", "subscription_id")} as Id,
            {sf_id("001", "account_id")} as AccountId,
            case when ended_at is null or ended_at > (select cast(export_time as date)
                from export_time) then 'Activated' else 'Expired' end as Status,
            started_at as StartDate, ended_at - 1 as EndDate, 0 as IsDeleted,
            cast(started_at as timestamp) as SystemModstamp
        from subscriptions""",
}

HUBSPOT: Mapping[str, str] = {
    "owner": """
        select user_id as owner_id, split_part(full_name, ' ', 1) as first_name,
            nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '') as last_name,
            email, cast(hired_at as timestamp) as created_at,
            cast(coalesce(terminated_at, hired_at) as timestamp) as updated_at,
            case when terminated_at is null then 'hs-' || user_id end as active_user_id,
            false as archived
        from users""",
    "team": "select team_id as id, team_name as name from teams",
    "owner_team": """
        select user_id as owner_id, team_id, true as is_primary from users
        where team_id is not null""",
    "company": """
        select account_id as id, account_name as property_name,
            industry as property_industry, owner_id as property_hubspot_owner_id,
            created_at as property_createdate, false as is_deleted
        from accounts""",
    "deal_pipeline_stage": """
        select 'default' as pipeline_id, stage_name as stage_id, stage_name as label,
            stage_order - 1 as display_order, probability, is_closed, is_won as closed_won
        from pipeline_stages""",
    "deal": """
        select opportunity_id as deal_id, owner_id, 'default' as deal_pipeline_id,
            stage_name as deal_pipeline_stage_id, opportunity_name as property_dealname,
            replace(opportunity_type, '_', '') as property_dealtype,
            amount as property_amount, created_at as property_createdate,
            cast(coalesce(close_date, cast(created_at as date) + 45) as timestamp)
                as property_closedate,
            false as is_deleted
        from opportunities""",
    "deal_company": "select opportunity_id as deal_id, account_id as company_id from opportunities",
    "deal_stage": """
        select opportunity_id as deal_id, entered_at as date_entered, stage_name as value,
            true as _fivetran_active
        from opportunity_stage_history""",
    "contact": """
        select lead_id as id, created_at as property_createdate,
            owner_id as property_hubspot_owner_id, lead_source as property_hs_analytics_source,
            upper(status) as property_hs_lead_status, 'lead' as property_lifecyclestage,
            mql_at as property_hs_lifecyclestage_marketingqualifiedlead_date,
            sql_at as property_hs_lifecyclestage_salesqualifiedlead_date,
            case when status = 'converted' then converted_at end
                as property_hs_lifecyclestage_customer_date,
            false as is_deleted
        from leads""",
    "deal_contact": """
        select converted_opportunity_id as deal_id, lead_id as contact_id from leads
        where converted_opportunity_id is not null""",
    "engagement": """
        select activity_id as id, owner_id,
            upper(case when kind = 'demo' then 'meeting' else kind end) as type
        from typed_activities where kind <> 'other'""",
    "engagement_call": """
        select activity_id as engagement_id, owner_id as property_hubspot_owner_id,
            occurred_at as property_hs_timestamp, occurred_at as property_hs_createdate
        from typed_activities where kind = 'call'""",
    "engagement_email": """
        select activity_id as engagement_id, owner_id as property_hubspot_owner_id,
            occurred_at as property_hs_timestamp, occurred_at as property_hs_createdate
        from typed_activities where kind = 'email'""",
    "engagement_meeting": """
        select activity_id as engagement_id, owner_id as property_hubspot_owner_id,
            occurred_at as property_hs_timestamp, occurred_at as property_hs_createdate,
            occurred_at as property_hs_meeting_start_time
        from typed_activities where kind in ('meeting', 'demo')""",
    "engagement_contact": """
        select activity_id as engagement_id, lead_id as contact_id from typed_activities
        where lead_id is not null and kind <> 'other'""",
    "engagement_deal": """
        select activity_id as engagement_id, opportunity_id as deal_id from typed_activities
        where opportunity_id is not null and kind <> 'other'""",
}


def write_crm_export(
    out_dir: Path,
    crm: str,
    *,
    seed: int = 42,
    opportunities: int = 3000,
    months: int = 14,
    file_format: str = "csv",
) -> dict[str, int]:
    """Write the contract generator's export in the shape of `crm`; return
    rows written per object. Salesforce as CSV is a Data Export (API names);
    as Parquet, and HubSpot always, snake_case tables."""
    objects = {"salesforce": SALESFORCE, "hubspot": HUBSPOT}.get(crm)
    if objects is None:
        raise ProjectError(f"--crm must be salesforce or hubspot, not '{crm}'.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crm-contract-") as contract_dir:
        generate_export(
            Path(contract_dir),
            seed=seed,
            opportunities=opportunities,
            file_format="parquet",
            months=months,
        )
        with duckdb.connect() as con:
            con.execute("set TimeZone = 'UTC'")
            for table, columns in CONTRACT.items():
                path = quote_literal(str(Path(contract_dir) / f"{table}.parquet"))
                cents = ", ".join(
                    f"cast({c} as {CENTS}) as {c}" for c, t in columns if t == "money"
                )
                replace = f" replace ({cents})" if cents else ""
                con.execute(f"create view {table} as select *{replace} from read_parquet({path})")
            con.execute("""
                create view typed_activities as
                select *, case
                    when lower(trim(activity_type, ' ' || chr(9) || chr(10) || chr(13)))
                        in ('call', 'email', 'meeting', 'demo')
                    then lower(trim(activity_type, ' ' || chr(9) || chr(10) || chr(13)))
                    else 'other' end as kind
                from activities;
                create view export_time as
                select greatest(
                    (select max(occurred_at) from activities),
                    (select max(entered_at) from opportunity_stage_history),
                    (select max(created_at) from leads)
                ) as export_time;
            """)
            return {
                name: _write(con, sql, out_dir, name, crm, file_format)
                for name, sql in objects.items()
            }


def snake_case(name: str) -> str:
    """`OpportunityHistory` -> `opportunity_history`, as replication tools name it."""
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out += "_"
        out += ch.lower()
    return out


def _write(
    con: duckdb.DuckDBPyConnection, sql: str, out_dir: Path, name: str, crm: str, file_format: str
) -> int:
    """One object's file: a Salesforce Data Export CSV (API names, every value
    quoted, CRLF), or a snake_case table as replication tools write it."""
    data_export = crm == "salesforce" and file_format == "csv"
    file_name = name if data_export else snake_case(name)
    path = out_dir / f"{file_name}.{file_format}"
    temporary = path.with_name(f".{path.name}.tmp")
    if data_export:
        options = "format csv, header true, force_quote *, new_line '\\r\\n'"
        query = sql
    else:
        columns = [d[0] for d in con.execute(f"select * from ({sql}) limit 0").description]
        renamed = ", ".join(f'"{c}" as "{snake_case(c)}"' for c in columns)
        query = f"select {renamed} from ({sql})"
        options = "format csv, header true" if file_format == "csv" else "format parquet"
    count = con.execute(
        f"copy ({query} order by all) to {quote_literal(str(temporary))} ({options})"
    ).fetchone()
    os.replace(temporary, path)
    return int(count[0]) if count else 0
