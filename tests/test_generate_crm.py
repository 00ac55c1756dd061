"""`kpi generate --crm`: the contract generator's data in a CRM's shape.

The Salesforce export of a seed holds the same deals, activities, quotas and
contracts as the contract export of that seed, so every company-level KPI
except lead conversion (Salesforce has no MQL / SQL dates) is the same.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from runner import Project
from runner.cli import main
from runner.crm_formats import detect_format

ROOT = Path(__file__).resolve().parents[1]
SAME_MARTS = [
    "kpi_win_rate",
    "kpi_avg_deal_size",
    "kpi_days_to_close",
    "kpi_quota_attainment",
    "kpi_stage_duration",
    "kpi_monthly_sales",
    "kpi_churn",
    "kpi_lead_response_time",
    "kpi_sales_effort",
]


def _company_rows(path: Path, mart: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"select * from marts.{mart} where level = 'company' order by all"
        ).fetchall()


def test_salesforce_export_gives_the_contract_exports_numbers(tmp_path: Path):
    runner = CliRunner()
    for crm in ("contract", "salesforce"):
        args = ["generate", str(tmp_path / crm), "--opportunities", "150", "--crm", crm]
        assert runner.invoke(main, args).exit_code == 0
    assert detect_format(tmp_path / "salesforce") == "salesforce"
    assert (tmp_path / "salesforce" / "Opportunity.csv").read_bytes().startswith(b'"Id",')
    paths = {}
    for crm in ("contract", "salesforce"):
        paths[crm] = tmp_path / f"{crm}.duckdb"
        project = Project.load(
            ROOT, warehouse=paths[crm], raw_dir=tmp_path / crm, target_path=tmp_path / f"t_{crm}"
        )
        assert project.build().exit_code == 0
    for mart in SAME_MARTS:
        assert _company_rows(paths["contract"], mart) == _company_rows(paths["salesforce"], mart), (
            mart
        )


def test_hubspot_export_is_detected_and_deterministic(tmp_path: Path):
    from runner.crm.generate_crm import write_crm_export

    first = write_crm_export(tmp_path / "a", "hubspot", opportunities=60, file_format="parquet")
    write_crm_export(tmp_path / "b", "hubspot", opportunities=60, file_format="parquet")
    assert detect_format(tmp_path / "a") == "hubspot"
    assert first["deal"] == 60
    for file in sorted((tmp_path / "a").iterdir()):
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name
