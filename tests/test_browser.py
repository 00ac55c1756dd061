"""The docs site and the KPI report in a real headless Chromium (Playwright,
driving the system's `chromium`): no console error, no network request, every
chart drawn from the marts, a team's numbers when a team is chosen, the
column lineage down to the raw columns. Screenshots go to
`target/screenshots/` for a person to look at.

Chromium missing is a failure, not a skip: install it (`apt-get install -y
chromium`) or point KPI_CHROMIUM at it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from runner.project import Project
from runner.report import KPIS, Kpi

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "target" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIN_RATE = "model.sales-kpi-warehouse.kpi_win_rate"


def chromium_path() -> str:
    path = os.environ.get("KPI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), (
        f"no Chromium at {path}: install it (apt-get install -y chromium) for the browser tests"
    )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(demo_build: tuple[Project, Path]) -> dict[str, Any]:
    """The docs site and the report of the shared demo build."""
    project, warehouse = demo_build
    docs = project.docs_generate()
    report = project.report()
    return {"docs": docs.index, "report": report.path, "warehouse": warehouse}


class Watched:
    """A page with its console errors and every request it made."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def check_quiet(self) -> None:
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith(("file://", "data:"))] == []


def open_page(browser: Browser, url: str, width: int = 1280) -> Watched:
    page = browser.new_page(viewport={"width": width, "height": 900})
    watched = Watched(page)
    page.goto(url)
    page.wait_for_load_state("load")
    return watched


def shoot(page: Page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def mart_rows(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def values_by_month(warehouse: Path, kpi: Kpi, where: str, params: list[Any]) -> dict[str, float]:
    """The KPI per month from the mart: sum(numerator) / sum(denominator) x scale."""
    den = f"sum({kpi.denominator})" if kpi.denominator else "1"
    rows = mart_rows(
        warehouse,
        f"select month, sum({kpi.numerator}), {den} from marts.{kpi.mart} where {where} "
        "group by month order by month",
        params,
    )
    out = {}
    for month, num, den_value in rows:
        if kpi.denominator is None:
            out[str(month)] = float(num)
        elif den_value:
            out[str(month)] = float(num) / float(den_value) * kpi.scale
    return out


# -- the report ----------------------------------------------------------------------------


DRAWN = """() => Object.fromEntries([...document.querySelectorAll("section.kpi")].map((s) => [
    s.dataset.kpi,
    {
        points: [...s.querySelectorAll("svg.trend circle.point")].map(
            (c) => [c.dataset.month, Number(c.dataset.value)]),
        bars: s.querySelectorAll("svg.teams rect.bar").length,
        teamCharts: s.querySelectorAll("svg.teams").length,
        reps: s.querySelectorAll("table.reps tbody tr").length,
        axisTitles: s.querySelectorAll("svg.trend text.axis-title").length,
        referenceLines: s.querySelectorAll("svg.trend path.ref-line").length,
        stageBars: s.querySelectorAll("svg.stages rect.bar").length,
    },
]))"""


def test_the_report_loads_quietly_and_draws_every_chart(browser: Browser, site) -> None:
    watched = open_page(browser, site["report"].as_uri())
    page = watched.page
    drawn = page.evaluate(DRAWN)
    assert set(drawn) == {k.mart for k in KPIS}
    for kpi in KPIS:
        chart = drawn[kpi.mart]
        expected = values_by_month(site["warehouse"], kpi, "level = 'company'", [])
        assert expected, kpi.mart
        assert len(chart["points"]) == len(expected), kpi.mart
        assert dict(chart["points"]) == pytest.approx(expected), kpi.mart
        assert chart["axisTitles"] == 2, kpi.mart  # x and y, with the unit
        assert chart["referenceLines"] == (1 if kpi.reference else 0), kpi.mart
        if kpi.breakdown:
            (stages,) = mart_rows(
                site["warehouse"],
                f"select count(distinct {kpi.breakdown}) from marts.{kpi.mart} "
                "where level = 'company' and exits > 0",
            )[0]
            assert chart["stageBars"] == stages > 0
        if kpi.company_only:
            assert chart["teamCharts"] == 0
            continue
        teams = mart_rows(
            site["warehouse"],
            f"select count(distinct team_id) from marts.{kpi.mart} where level = 'team'",
        )[0][0]
        assert chart["bars"] == teams, kpi.mart
        assert chart["reps"] > 0, kpi.mart
    assert "Win rate (%)" in page.locator("section[data-kpi='kpi_win_rate']").inner_text()
    shoot(page, "report-1280.png")
    shoot(page, "report-1280-top.png", full_page=False)
    watched.check_quiet()
    page.close()


def test_choosing_a_team_shows_that_teams_mart_values(browser: Browser, site) -> None:
    watched = open_page(browser, site["report"].as_uri())
    page = watched.page
    month = page.locator(".cards-title").inner_text()
    assert "Last complete month" in month
    page.select_option("#team", "T03")
    for kpi in KPIS:
        card = page.locator(f".card[data-kpi='{kpi.mart}']")
        shown = float(card.get_attribute("data-value") or "nan")
        if kpi.company_only:
            expected = values_by_month(site["warehouse"], kpi, "level = 'company'", [])
        else:
            expected = values_by_month(
                site["warehouse"], kpi, "level = 'team' and team_id = ?", ["T03"]
            )
        last = max(expected)  # the demo's last month is complete
        assert shown == pytest.approx(expected[last]), kpi.mart
        if not kpi.company_only:
            section = page.locator(f"section.kpi[data-kpi='{kpi.mart}']")
            assert section.locator("svg.trend circle.point").count() == len(expected)
            assert section.locator("svg.teams rect.bar.selected").get_attribute("data-team") == (
                "T03"
            )
            teams = section.locator("table.reps tbody tr td:nth-child(2)").all_inner_texts()
            assert set(teams) == {"SMB"}, kpi.mart
    # two months combined: the rate of the sums, never the mean of the rates
    page.select_option("#from", "2026-01-01")
    page.select_option("#to", "2026-02-01")
    ((won, closed),) = mart_rows(
        site["warehouse"],
        "select sum(won_deals), sum(closed_deals) from marts.kpi_win_rate "
        "where level = 'team' and team_id = 'T03' and month >= '2026-01-01'",
    )
    text = page.locator("section[data-kpi='kpi_win_rate'] .range-value").inner_text()
    assert text.startswith(f"{100 * won / closed:.1f}%")
    watched.check_quiet()
    page.close()


def test_the_rep_table_sorts_by_a_clicked_column(browser: Browser, site) -> None:
    watched = open_page(browser, site["report"].as_uri())
    page = watched.page
    table = page.locator("table.reps[data-kpi='kpi_monthly_sales']")
    table.locator("th", has_text="Rep").click()
    table = page.locator("table.reps[data-kpi='kpi_monthly_sales']")
    names = table.locator("tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    watched.check_quiet()
    page.close()


def test_the_report_reads_at_phone_width(browser: Browser, site) -> None:
    watched = open_page(browser, site["report"].as_uri(), width=375)
    page = watched.page
    # nothing wider than the screen but the rep tables, which scroll inside their box
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375
    assert page.locator("svg.trend circle.point").count() > 0
    shoot(page, "report-375.png")
    shoot(page, "report-375-top.png", full_page=False)
    watched.check_quiet()
    page.close()


# -- the docs site ---------------------------------------------------------------------------


def test_the_docs_site_loads_quietly_with_every_node(browser: Browser, site) -> None:
    watched = open_page(browser, site["docs"].as_uri())
    page = watched.page
    assert page.locator("svg.graph .gnode").count() >= 45  # sources and models
    assert page.locator("#node-list a", has_text="kpi_win_rate").count() >= 1
    page.fill("#search", "win_rate")
    listed = page.locator("#node-list a").all_inner_texts()
    assert "kpi_win_rate" in listed and "kpi_churn" not in listed
    shoot(page, "docs-1280.png", full_page=False)
    page.fill("#search", "")
    page.locator("#node-list a", has_text="kpi_win_rate").first.click()
    # the page is drawn on the hashchange that follows the click: wait for it
    expect(page.locator("h1")).to_have_text(re.compile(r"^kpi_win_rate"))
    text = page.locator("#content").inner_text()
    assert "int_closed_deals_aggregated" in text  # upstream
    assert "won_deals / closed_deals" in text  # column description
    assert "not_null" in text and "pass" in text  # tests and their status
    assert "cast(won_deals as double)" in text  # compiled SQL
    shoot(page, "docs-node-1280.png")
    watched.check_quiet()
    page.close()


def test_a_macro_page_shows_its_text_and_what_uses_it(browser: Browser, site) -> None:
    """From kpi_win_rate's page to the macro `safe_divide` it calls: its
    arguments, its text, the macros and models that call it."""
    watched = open_page(browser, site["docs"].as_uri() + "#node/" + WIN_RATE)
    page = watched.page
    page.locator("dd .macro-list a", has_text="safe_divide").click()
    expect(page.locator("h1")).to_have_text("safe_divide")
    text = page.locator("#content").inner_text()
    assert "numerator, denominator" in text  # its arguments
    assert "{% macro safe_divide(numerator, denominator)" in text  # its text
    used_by = page.locator("section", has_text="Used by").inner_text()
    assert "kpi_win_rate" in used_by and "percent_of" in used_by
    assert page.locator("svg.graph").count() == 0  # a macro is not in the lineage
    # the sidebar lists the macros, closed until a search
    page.fill("#search", "safe_divide")
    assert "safe_divide" in page.locator("#node-list a").all_inner_texts()
    shoot(page, "docs-macro-1280.png")
    watched.check_quiet()
    page.close()


def test_the_lineage_of_win_rate_names_the_raw_columns(browser: Browser, site) -> None:
    watched = open_page(browser, site["docs"].as_uri() + "#node/" + WIN_RATE)
    page = watched.page
    page.locator("tr[data-column='win_rate'] a.lineage-link").click()
    raw = page.locator("#lineage-raw").inner_text()
    assert "opportunities.is_won" in raw
    assert "opportunities.is_closed" in raw
    path = page.locator("#lineage-path").inner_text()
    for model in ("int_closed_deals_aggregated", "int_opportunities_enriched", "stg_crm__"):
        assert model in path
    shoot(page, "docs-lineage-1280.png")
    watched.check_quiet()
    page.close()
