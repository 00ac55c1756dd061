"""The README's example queries give the output it shows, on the bundled demo.

Run `python tests/test_readme.py --write` to refresh the outputs after a
change to the models or the demo data.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from runner.project import Project
from runner.reporting import Reporter, format_rows

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = re.compile(r"```sql\n(?P<sql>.*?)```\n\n```text\n(?P<output>.*?)```", re.DOTALL)
COMMAND = re.compile(
    r"```bash\n(?P<command>kpi metrics [^\n]*)\n```\n\n```text\n(?P<output>.*?)```", re.DOTALL
)


def build_demo(work: Path) -> Path:
    warehouse = work / "warehouse.duckdb"
    quiet = Reporter(stream=io.StringIO())
    project = Project.load(ROOT, warehouse=warehouse, target_path=work / "target", reporter=quiet)
    result = project.build()
    assert result.exit_code == 0, result.summary
    return warehouse


def render(warehouse: Path, sql: str) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or ()]
        return format_rows(columns, result.fetchall()) + "\n"
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_warehouse(demo_build: tuple[Project, Path]) -> Path:
    return demo_build[1]


def test_the_readme_shows_ten_examples() -> None:
    assert len(EXAMPLE.findall(README.read_text(encoding="utf-8"))) == 10


@pytest.mark.parametrize("index", range(10))
def test_each_example_output_is_what_the_query_returns(demo_warehouse: Path, index: int) -> None:
    match = list(EXAMPLE.finditer(README.read_text(encoding="utf-8")))[index]
    assert render(demo_warehouse, match.group("sql")) == match.group("output")


def run_command(project: Project, command: str) -> str:
    """A `kpi metrics` command of the README, run on the demo warehouse: its stdout."""
    from click.testing import CliRunner

    from runner.cli import main

    args = shlex.split(command)[1:]
    args += ["--warehouse", str(project.settings.warehouse)]
    args += ["--target-path", str(project.settings.target_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_readme_shows_a_kpi_metrics_example() -> None:
    assert len(COMMAND.findall(README.read_text(encoding="utf-8"))) == 1


def test_the_kpi_metrics_example_output_is_what_the_command_prints(
    demo_build: tuple[Project, Path],
) -> None:
    match = COMMAND.search(README.read_text(encoding="utf-8"))
    assert match is not None
    assert run_command(demo_build[0], match.group("command")) == match.group("output")


def write_outputs() -> None:
    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as work:
        warehouse = build_demo(Path(work))

        def fill(match: re.Match[str]) -> str:
            sql = match.group("sql")
            return f"```sql\n{sql}```\n\n```text\n{render(warehouse, sql)}```"

        README.write_text(EXAMPLE.sub(fill, text), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_outputs()
