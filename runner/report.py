"""`kpi report`: the ten KPIs as one self-contained HTML page.

The page embeds the numerators and denominators of every mart row (company,
team and rep levels) as JSON, and its own JavaScript and CSS (no network):
the browser sums them over the chosen months and team and divides, so a rate
over several months or teams is never an average of rates.

    info = write_report(con, Path("target/report/index.html"))
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import html_assets
from runner.errors import ProjectError

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Kpi:
    """How a mart becomes a number: sum(numerator) / sum(denominator) x scale
    (a plain sum when there is no denominator), with its unit and direction."""

    mart: str
    title: str
    numerator: str
    numerator_label: str
    denominator: str | None
    denominator_label: str
    unit: str  # pct, currency, days, minutes, count
    scale: float
    better: str  # up or down
    formula: str
    x_label: str
    company_only: bool = False
    reference: str | None = None  # drawn as a dashed line: the quota of sales
    reference_label: str = ""
    breakdown: str | None = None  # a third chart, by this column (the stage)
    breakdown_order: str | None = None


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "kpi_win_rate",
        "Win rate",
        "won_deals",
        "Won deals",
        "closed_deals",
        "Closed deals",
        "pct",
        100.0,
        "up",
        "won deals ÷ closed deals",
        "month of close",
    ),
    Kpi(
        "kpi_lead_conversion",
        "Lead conversion",
        "customers",
        "Customers",
        "leads",
        "Leads",
        "pct",
        100.0,
        "up",
        "leads that became customers ÷ leads",
        "month the lead came in",
    ),
    Kpi(
        "kpi_avg_deal_size",
        "Average deal size",
        "won_amount",
        "Won amount",
        "won_deals",
        "Won deals",
        "currency",
        1.0,
        "up",
        "won amount ÷ won deals",
        "month of close",
    ),
    Kpi(
        "kpi_days_to_close",
        "Days to close",
        "total_days_to_close",
        "Total days",
        "won_deals",
        "Won deals",
        "days",
        1.0,
        "down",
        "days from first touch to close ÷ won deals",
        "month of close",
    ),
    Kpi(
        "kpi_quota_attainment",
        "Reps meeting quota",
        "reps_meeting_quota",
        "Met quota",
        "reps_with_quota",
        "With quota",
        "pct",
        100.0,
        "up",
        "reps who met their quota ÷ reps with a quota (rep-months)",
        "quota month",
    ),
    Kpi(
        "kpi_stage_duration",
        "Time in a pipeline stage",
        "total_days_in_stage",
        "Total days",
        "exits",
        "Stage exits",
        "days",
        1.0,
        "down",
        "days spent in open stages ÷ stage exits (all stages, and by stage)",
        "month the deal left the stage",
        breakdown="stage_name",
        breakdown_order="stage_order",
    ),
    Kpi(
        "kpi_monthly_sales",
        "Monthly sales",
        "won_amount",
        "Won amount",
        None,
        "",
        "currency",
        1.0,
        "up",
        "sum of the amounts of won deals, against the sum of the reps' quotas",
        "month of close",
        reference="quota_amount",
        reference_label="Quota",
    ),
    Kpi(
        "kpi_churn",
        "Customer churn",
        "churned_customers",
        "Churned",
        "customers_at_start",
        "Customers at start",
        "pct",
        100.0,
        "down",
        "customers lost in the month ÷ customers at its start",
        "month",
        company_only=True,
    ),
    Kpi(
        "kpi_lead_response_time",
        "Lead response time",
        "total_response_minutes",
        "Total minutes",
        "contacted_leads",
        "Contacted leads",
        "minutes",
        1.0,
        "down",
        "minutes from lead creation to first contact ÷ contacted leads",
        "month the lead came in",
    ),
    Kpi(
        "kpi_sales_effort",
        "Sales activities",
        "total_activities",
        "Activities",
        None,
        "",
        "count",
        1.0,
        "up",
        "calls, emails, meetings, demos and other activities",
        "month of the activity",
    ),
)


@dataclass(frozen=True)
class ReportInfo:
    """What `write_report` wrote."""

    path: Path
    bytes: int
    months: int
    last_complete_month: str | None


def report_data(
    con: duckdb.DuckDBPyConnection, schema: str = "marts", currency: str = "USD"
) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-ready values."""
    import duckdb

    try:
        months = [
            str(r[0])
            for r in con.execute(
                f"select distinct month from {schema}.kpi_win_rate where level = 'company' "
                "order by 1"
            ).fetchall()
        ]
        teams = con.execute(
            f"select team_id, team_name from {schema}.dim_teams order by team_id"
        ).fetchall()
        reps = con.execute(
            f"select user_id, full_name, team_id from {schema}.dim_reps order by user_id"
        ).fetchall()
        kpis = [_kpi_rows(con, schema, kpi) for kpi in KPIS]
        newest = _newest_data_date(con, schema)
    except duckdb.CatalogException as exc:
        raise ProjectError(
            f"the warehouse has no marts to report on ({str(exc).splitlines()[0]}).",
            hint="Run `kpi build` first.",
        ) from exc
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "currency": currency,
        "months": months,
        "last_complete_month": last_complete_month(months, newest, date.today()),
        "teams": [{"id": t, "name": n} for t, n in teams],
        "reps": {u: {"name": n, "team": t} for u, n, t in reps},
        "kpis": kpis,
    }


def last_complete_month(months: list[str], newest: date | None, today: date) -> str | None:
    """The last month of the range that ended on or before both the newest
    date in the data and today: an export taken mid-month has a partial last
    month.

    >>> last_complete_month(["2026-01-01", "2026-02-01"], date(2026, 2, 14), date(2026, 2, 14))
    '2026-01-01'
    >>> last_complete_month(["2026-01-01", "2026-02-01"], date(2026, 2, 28), date(2026, 5, 1))
    '2026-02-01'
    """
    limit = min(newest, today) if newest else today
    complete = [m for m in months if _month_end(date.fromisoformat(m)) <= limit]
    return complete[-1] if complete else None


def _month_end(month: date) -> date:
    from datetime import timedelta

    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _newest_data_date(con: duckdb.DuckDBPyConnection, schema: str) -> date | None:
    row = con.execute(
        "select max(d) from ("
        f"select max(cast(created_at as date)) as d from {schema}.fct_opportunities union all "
        f"select max(close_date) from {schema}.fct_opportunities union all "
        f"select max(cast(created_at as date)) from {schema}.fct_leads)"
    ).fetchone()
    value = row[0] if row else None
    return value if isinstance(value, date) else None


def _kpi_rows(con: duckdb.DuckDBPyConnection, schema: str, kpi: Kpi) -> dict[str, Any]:
    """The mart's rows summed to month, level, team and rep (the stage mart
    has one row per stage too), numerator and denominator only."""
    denominator = f"sum({kpi.denominator})" if kpi.denominator else "null"
    reference = f"sum({kpi.reference})" if kpi.reference else "null"
    breakdown = kpi.breakdown or "null"
    rows = con.execute(
        f"select month, level, team_id, rep_id, sum({kpi.numerator}), {denominator}, "
        f"{reference}, {breakdown} from {schema}.{kpi.mart} group by all "
        "order by month, level, team_id, rep_id"
    ).fetchall()
    order: list[str] = []
    if kpi.breakdown:
        order = [
            r[0]
            for r in con.execute(
                f"select {kpi.breakdown} from {schema}.{kpi.mart} group by all "
                f"order by min({kpi.breakdown_order or kpi.breakdown}), 1"
            ).fetchall()
        ]
    return {
        "breakdown_values": order,
        **asdict(kpi),
        "rows": [[str(r[0]), *r[1:4], *map(_num, r[4:7]), r[7]] for r in rows],
    }


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, int):
        return value
    return float(value)


def render_report(data: dict[str, Any]) -> str:
    """The HTML page: data as JSON, the page's own CSS and JavaScript inlined."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return html_assets.page(
        title="Sales KPIs",
        css=html_assets.read("report.css"),
        body='<div id="app"></div>',
        data_id="kpi-data",
        data=payload,
        js=html_assets.read("report.js"),
    )


def write_report(
    con: duckdb.DuckDBPyConnection, out: Path, schema: str = "marts", currency: str = "USD"
) -> ReportInfo:
    """Write the report page to `out` (atomically)."""
    data = report_data(con, schema, currency)
    text = render_report(data)
    html_assets.write_text(out, text)
    return ReportInfo(
        out, len(text.encode("utf-8")), len(data["months"]), data["last_complete_month"]
    )
