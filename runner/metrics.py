"""Metrics: a KPI by company, team or rep over any grain, from the monthly marts.

Every metric is declared once, under `metrics:` in the yml next to its mart
(KPI_SPEC section 5):

    metrics:
      - name: win_rate
        mart: kpi_win_rate
        description: Won deals / closed deals.
        numerator: won_deals
        denominator: closed_deals
        format: ratio

A metric is a `value`, a `numerator` over a `denominator` (times an optional
`multiplier`, 100 for the `_pct` ones), or a `median`. Values, numerators and
denominators are expressions over the mart's columns in which a column is
summed over the months of the period, `first(column)` is its value in the
period's first month and `last(column)` in its last (the churn stocks):

    >>> measure_sql("last(customers_at_end)", None, "m")
    'coalesce(sum(m.customers_at_end) filter (where m.month = periods.last_month), 0)'

A rate over a quarter is thus summed numerator / summed denominator, never an
average of monthly rates; a median cannot be recomputed from sums and is
refused above the month grain. This module holds no DuckDB: it turns metric
definitions and a request into one SQL query, which `Project.metrics` runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import ProjectError

GRAINS = ("month", "quarter", "fiscal_quarter", "year", "fiscal_year")
LEVELS = ("company", "team", "rep")
FORMATS = ("count", "money", "ratio", "percent", "days", "minutes")
# Decimal places of each format in `--output table` (csv and json are exact).
TABLE_DECIMALS = {"count": 0, "money": 2, "ratio": 4, "percent": 2, "days": 1, "minutes": 1}

_MONTH_ARG = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_TERM = re.compile(r"\b(first|last)\(\s*([a-z_][a-z0-9_]*)\s*\)|\b([a-z_][a-z0-9_]*)\b(?!\s*\()")
_ALLOWED = re.compile(r"^[a-z0-9_+\-*/(). ]+$")
_KEYS = frozenset(
    {
        "name",
        "mart",
        "description",
        "format",
        "value",
        "numerator",
        "denominator",
        "multiplier",
        "median",
        "dimensions",
        "levels",
    }
)


class MetricError(ProjectError):
    """A metric request or definition the runner cannot answer (exit 2)."""


@dataclass(frozen=True)
class Metric:
    """One declared metric (see the module docstring)."""

    name: str
    mart: str
    description: str
    format: str
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    multiplier: float | int = 1
    median: str | None = None
    dimensions: tuple[str, ...] = ()
    levels: tuple[str, ...] = LEVELS
    path: str = ""


@dataclass(frozen=True)
class MetricsQuery:
    """What `kpi metrics` was asked: metric names, level, grain, month range
    (`YYYY-MM`, both ends included; None = the end of the reporting range)."""

    names: tuple[str, ...]
    by: str = "company"
    grain: str = "month"
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class MetricsResult:
    """The query that answers a request, and (once run) its columns and rows."""

    sql: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    formats: Mapping[str, str] | None = None


# -- reading the definitions -----------------------------------------------------


def parse_metric(entry: Mapping[str, Any], path: str, columns: Mapping[str, Any]) -> Metric:
    """A `metrics:` entry of a yml file as a `Metric`; `columns` are the
    documented columns of the mart it names (None when there is no such mart)."""
    name = str(entry["name"])
    where = f"metric '{name}'"

    def fail(message: str) -> MetricError:
        line = getattr(entry, "line", None)
        return MetricError(f"{where}: {message}", path=path, line=line)

    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise fail(
            f"unknown key(s) {', '.join(unknown)}; a metric takes {', '.join(sorted(_KEYS))}."
        )
    mart = str(entry.get("mart") or "")
    if not columns:
        raise fail(f"mart '{mart}' is not a documented model.")
    fmt = str(entry.get("format") or "")
    if fmt not in FORMATS:
        raise fail(f"format must be one of {', '.join(FORMATS)}, not '{fmt}'.")
    kinds = [k for k in ("value", "median", "numerator") if entry.get(k) is not None]
    if len(kinds) != 1 or (("numerator" in kinds) != (entry.get("denominator") is not None)):
        raise fail("give exactly one of value, median, or numerator with denominator.")
    for key in ("value", "numerator", "denominator"):
        if entry.get(key) is not None:
            try:
                measure_sql(str(entry[key]), set(columns), "mart")
            except ValueError as exc:
                raise fail(f"{key}: {exc}") from exc
    median = entry.get("median")
    if median is not None and str(median) not in columns:
        raise fail(f"median: '{median}' is not a column of {mart}.")
    dimensions = tuple(str(d) for d in entry.get("dimensions") or ())
    for dimension in dimensions:
        if dimension not in columns:
            raise fail(f"dimension '{dimension}' is not a column of {mart}.")
    levels = tuple(str(v) for v in entry.get("levels") or LEVELS)
    if not set(levels) <= set(LEVELS):
        raise fail(f"levels must be among {', '.join(LEVELS)}.")
    multiplier = entry.get("multiplier", 1)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float):
        raise fail(f"multiplier must be a number, not {multiplier!r}.")
    return Metric(
        name=name,
        mart=mart,
        description=str(entry.get("description") or ""),
        format=fmt,
        value=_text(entry.get("value")),
        numerator=_text(entry.get("numerator")),
        denominator=_text(entry.get("denominator")),
        multiplier=multiplier,
        median=_text(median),
        dimensions=dimensions,
        levels=levels,
        path=path,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def measure_sql(expression: str, columns: set[str] | None, alias: str) -> str:
    """An aggregate over the rows of a period: each column summed, `first(c)`
    and `last(c)` the column in the period's first and last month. Raises
    ValueError for anything but columns (of `columns`, when given), numbers,
    first(), last() and + - * / ( )."""
    if not _ALLOWED.match(expression):
        raise ValueError(f"'{expression}' may hold only columns, numbers, + - * / and ( ).")
    if re.search(r"\b[a-z_]\w*\s*\(", _TERM.sub("", expression)):
        raise ValueError(f"'{expression}': only first() and last() may be called.")

    def term(match: re.Match[str]) -> str:
        position, name = match.group(1), match.group(2) or match.group(3)
        if columns is not None and name not in columns:
            known = ", ".join(sorted(columns))
            raise ValueError(f"'{name}' is not a column of the mart (columns: {known}).")
        if position:
            bound = "first_month" if position == "first" else "last_month"
            filtered = f"sum({alias}.{name}) filter (where {alias}.month = periods.{bound})"
            return f"coalesce({filtered}, 0)"
        return f"sum({alias}.{name})"

    return _TERM.sub(term, expression)


# -- answering a request ---------------------------------------------------------


def check_query(query: MetricsQuery, metrics: Mapping[str, Metric]) -> list[Metric]:
    """The metrics a request names, after checking that it can be answered;
    a `MetricError` says what is wrong and what to ask instead."""
    if not query.names:
        raise MetricError(f"name at least one metric: {', '.join(sorted(metrics))}.")
    unknown = [n for n in query.names if n not in metrics]
    if unknown:
        raise MetricError(
            f"unknown metric(s) {', '.join(unknown)}. The metrics are: "
            f"{', '.join(sorted(metrics))}."
        )
    if query.by not in LEVELS:
        raise MetricError(f"--by must be one of {', '.join(LEVELS)}, not '{query.by}'.")
    if query.grain not in GRAINS:
        raise MetricError(f"--grain must be one of {', '.join(GRAINS)}, not '{query.grain}'.")
    for label, value in (("--from", query.start), ("--to", query.end)):
        if value is not None and not _MONTH_ARG.match(value):
            raise MetricError(f"{label} must be a month written YYYY-MM, not '{value}'.")
    if query.start and query.end and query.start > query.end:
        raise MetricError(f"--from {query.start} is after --to {query.end}.")
    chosen = [metrics[n] for n in dict.fromkeys(query.names)]
    for metric in chosen:
        if metric.median is not None and query.grain != "month":
            raise MetricError(
                f"{metric.name} is a median, which cannot be recomputed from monthly "
                f"sums: it exists at --grain month only, not {query.grain}. Ask for "
                f"the matching average (a sum over a count) instead, or query the "
                "underlying rows."
            )
        if query.by not in metric.levels:
            raise MetricError(
                f"{metric.name} ({metric.mart}) exists by {', '.join(metric.levels)} "
                f"only, not by {query.by}."
            )
    dimensions = {m.dimensions for m in chosen}
    if len(dimensions) > 1:
        split = "; ".join(
            f"{m.name} by {', '.join(m.dimensions) or 'nothing more'}" for m in chosen
        )
        raise MetricError(
            f"these metrics are not broken down the same way ({split}): ask for them "
            "in separate commands."
        )
    return chosen


_PERIODS = {
    "month": ("strftime(month, '%Y-%m')", "month"),
    "quarter": (
        "cast(calendar_year as varchar) || '-Q' || cast(calendar_quarter as varchar)",
        "cast(date_trunc('quarter', month) as date)",
    ),
    "year": ("cast(calendar_year as varchar)", "cast(date_trunc('year', month) as date)"),
    "fiscal_quarter": (
        "'FY' || cast(fiscal_year as varchar) || '-Q' || cast(fiscal_quarter as varchar)",
        "fiscal_quarter_start",
    ),
    "fiscal_year": ("'FY' || cast(fiscal_year as varchar)", "fiscal_year_start"),
}


def metrics_sql(
    query: MetricsQuery, metrics: Mapping[str, Metric], relations: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """The SQL that answers `query`, and the format of each metric column.
    `relations` maps `dim_months` and every mart name to its relation."""
    chosen = check_query(query, metrics)
    keys = {"company": [], "team": ["team_id"], "rep": ["team_id", "rep_id"]}[query.by]
    dimensions = list(chosen[0].dimensions)
    label, start = _PERIODS[query.grain]
    bounds = []
    if query.start:
        bounds.append(f"month >= date '{query.start}-01'")
    if query.end:
        bounds.append(f"month <= date '{query.end}-01'")
    where = ("\n    where " + "\n        and ".join(bounds)) if bounds else ""
    ctes = [
        f"months as (\n    select\n        month,\n        {label} as period,\n"
        f"        {start} as period_start\n    from {relations['dim_months']}{where}\n)",
        "periods as (\n    select\n        period,\n        min(month) as first_month,\n"
        "        max(month) as last_month\n    from months\n    group by period\n)",
    ]
    by_mart: dict[str, list[Metric]] = {}
    for metric in chosen:
        by_mart.setdefault(metric.mart, []).append(metric)
    group = ["months.period", "months.period_start"]
    group += [f"mart.{k}" for k in keys + dimensions]
    for mart, members in by_mart.items():
        columns = ",\n".join(f"        {_metric_sql(m)} as {m.name}" for m in members)
        ctes.append(
            f"{mart}_periods as (\n    select\n"
            + "".join(f"        {g},\n" for g in group)
            + f"{columns}\n"
            f"    from {relations[mart]} as mart\n"
            "    inner join months\n        on mart.month = months.month\n"
            "    inner join periods\n        on months.period = periods.period\n"
            f"    where mart.level = '{query.by}'\n"
            f"    group by {', '.join(group)}\n)"
        )
    out_keys = ["period", "period_start", *keys, *dimensions]
    names = [m.name for m in chosen]
    if len(by_mart) == 1:
        final = f"    select * from {next(iter(by_mart))}_periods"
    else:
        # union by name, then one row per key: a metric column is NULL on the
        # rows of the other marts, so max() picks its one value (NULL keys group
        # together, where a join would not match them).
        unions = "\n\n    union all by name\n\n".join(
            f"    select * from {mart}_periods" for mart in by_mart
        )
        ctes.append(f"metric_rows as (\n{unions}\n)")
        final = (
            "    select\n"
            + "".join(f"        {k},\n" for k in out_keys)
            + ",\n".join(f"        max({n}) as {n}" for n in names)
            + f"\n    from metric_rows\n    group by {', '.join(out_keys)}"
        )
    ctes.append(f"final as (\n{final}\n)")
    order = ", ".join(["period_start", *[f"{k} nulls first" for k in keys], *dimensions])
    sql = "with\n\n" + ",\n\n".join(ctes) + f"\n\nselect * from final\norder by {order}\n"
    return sql, {m.name: m.format for m in chosen}


def _metric_sql(metric: Metric) -> str:
    """The aggregate that computes `metric` over the rows of one period
    (column names are checked when the metric is read)."""
    if metric.median is not None:
        # one row per month and key: the mart's own median (month grain only)
        return f"any_value(mart.{metric.median})"
    if metric.value is not None:
        return measure_sql(metric.value, None, "mart")
    numerator = measure_sql(metric.numerator or "", None, "mart")
    denominator = measure_sql(metric.denominator or "", None, "mart")
    ratio = f"cast({numerator} as double) / nullif({denominator}, 0)"
    return ratio if metric.multiplier == 1 else f"{ratio} * {metric.multiplier}"


def round_for_table(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], formats: Mapping[str, str]
) -> list[tuple[Any, ...]]:
    """Rows with each metric rounded to its format's decimals, for reading
    (`--output table`; csv and json keep every digit)."""
    places = [TABLE_DECIMALS.get(formats.get(c, "")) for c in columns]
    return [
        tuple(
            v if p is None or v is None or isinstance(v, bool) else round(v, p)
            for v, p in zip(row, places, strict=True)
        )
        for row in rows
    ]
