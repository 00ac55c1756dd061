"""A Salesforce and a HubSpot export built on Spark equal their DuckDB builds.

The small CRM fixtures, built on both engines and compared table by table as
`test_spark.py` compares the demo export (the Salesforce one reports money
in USD, so the conversion to a reporting currency is compared too). A file
of its own: the suite runs a worker per file, so these builds run beside the
demo's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_spark import ROOT, assert_same_tables, quiet

pytestmark = pytest.mark.spark

# -- CRM exports on both engines ---------------------------------------------------

FIXTURES = ROOT / "tests" / "fixtures"


def build_on_both(export: Path, work: Path, variables: dict[str, Any]) -> None:
    """`export` built on DuckDB (models and data tests) and on Spark (models
    only: Spark runs the data tests in `test_spark.py`'s demo build, and the
    models are what differs between the CRMs): every mart and intermediate
    table equal."""
    duck = quiet(ROOT, work, "duck", raw_dir=export, vars=variables).build()
    assert duck.exit_code == 0, duck.summary
    tests = {r.name: str(r.status) for r in duck.results if r.unique_id.startswith("test.")}
    assert tests and set(tests.values()) <= {"pass", "warn"}
    on_spark = quiet(ROOT, work, "spark", raw_dir=export, target="spark", vars=variables)
    on_spark = on_spark.build(exclude=["resource_type:test"])
    assert on_spark.exit_code == 0, on_spark.summary
    compared = assert_same_tables(
        work / "duck.duckdb", work / "spark-spark", ("marts", "intermediate")
    )
    assert compared >= 26


# The Salesforce build reports money in USD: its EUR deal is converted at
# CurrencyType's rate (KPI_SPEC section 5) on both engines.
@pytest.mark.parametrize(
    ("export", "variables"),
    [("salesforce_small", {"reporting_currency": "USD"}), ("hubspot_small", {})],
)
def test_a_crm_export_built_on_spark_equals_the_duckdb_build(
    spark: Any, export: str, variables: dict[str, Any], tmp_path: Path
) -> None:
    build_on_both(FIXTURES / export, tmp_path, variables)
    if variables:
        with duckdb.connect() as con:
            folder = tmp_path / "spark-spark" / "marts" / "kpi_monthly_sales"
            codes = con.execute(
                f"select distinct currency_code from read_parquet('{folder}/*.parquet')"
            ).fetchall()
        assert codes == [("USD",)]
