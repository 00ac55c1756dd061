"""runner/cli.py through click's CliRunner: exit codes, stdout (data) versus
stderr (progress and errors), and every command documented with an example."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner, Result

from runner.cli import main

MODELS = {
    "models/orders.sql": "{{ config(materialized='table') }}"
    "select * from (values (1, 'a'), (2, 'b'), (3, 'c')) v(id, name)",
    "models/orders.yml": "models:\n  - name: orders\n    columns:\n      - name: id\n"
    "        data_tests: [unique, not_null]\n",
    "models/orders_view.sql": "select * from {{ ref('orders') }}",
}


@pytest.fixture
def cli(runner_env):
    def invoke(root, *args: str, env=None) -> Result:
        location = ["--project-dir", str(root)]
        if env is None or "KPI_WAREHOUSE" not in env:
            location += ["--warehouse", str(root / "w.duckdb")]
        return CliRunner().invoke(main, [*args, *location], env=env)

    return invoke


@pytest.fixture
def project(make_project):
    return make_project(MODELS)


# -- exit codes ------------------------------------------------------------------------


def test_build_ok_exits_0_with_progress_on_stderr_and_nothing_on_stdout(cli, project) -> None:
    result = cli(project, "build")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "OK created table main.orders" in result.stderr
    assert "PASS=4 WARN=0 ERROR=0 SKIP=0 TOTAL=4" in result.stderr


def test_a_failing_test_exits_1(cli, make_project, project) -> None:
    make_project({"models/orders.sql": "select 1 as id union all select 1"}, root=project)
    result = cli(project, "build")
    assert result.exit_code == 1
    assert "FAIL 1 unique_orders_id" in result.stderr
    assert "Failure in test unique_orders_id" in result.stderr


def test_a_failing_model_exits_1(cli, make_project, project) -> None:
    make_project(
        {"models/orders.sql": "{{ config(materialized='table') }}select 'x'::int as id"},
        root=project,
    )
    result = cli(project, "run")
    assert result.exit_code == 1
    assert "Error in model orders (models/orders.sql)" in result.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"models/bad.sql": "select {{ nope }}"}, "models/bad.sql:1: 'nope' is undefined"),
        ({"models/bad.sql": "select * from {{ ref('order') }}"}, "Did you mean 'orders'?"),
        (
            {
                "models/x.sql": "select * from {{ ref('y') }}",
                "models/y.sql": "select * from {{ ref('x') }}",
            },
            "dependency cycle: x -> y -> x",
        ),
        ({"models/bad.yml": "models:\n  - name: [\n"}, "models/bad.yml:3"),
        ({"models/bad.sql": "select 1 from from"}, "model 'bad' (models/bad.sql) does not parse"),
        ({"models/orders/orders.sql": "select 1"}, "two nodes are named 'orders'"),
        ({"pyproject.toml": "[tool.kpi]\nthreads = 0\n"}, "threads must be a positive integer"),
    ],
    ids=["undefined", "missing-ref", "cycle", "yml", "syntax", "duplicate", "settings"],
)
def test_a_project_error_exits_2_with_the_message_on_stderr(
    cli, make_project, project, files, message
) -> None:
    make_project(files, root=project)
    result = cli(project, "build")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")
    assert result.stdout == ""


def test_a_syntax_error_builds_nothing(cli, make_project, project) -> None:
    make_project({"models/bad.sql": "select 1\nfrom from"}, root=project)
    result = cli(project, "build")
    assert result.exit_code == 2
    assert "target/compiled/models/bad.sql:2:6" in result.stderr
    assert "OK created" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "-s", "colour:red"],
        ["run", "--threads", "0"],
        ["run", "--vars", "[1, 2]"],
        ["frobnicate"],
        ["show"],
        ["show", "orders", "--inline", "select 1"],
        ["show", "no_such_model"],
        ["ls", "--output", "xml"],
    ],
)
def test_a_command_line_error_exits_2(cli, project, args) -> None:
    result = cli(project, *args)
    assert result.exit_code == 2
    assert "Error" in result.stderr
    assert result.stdout == ""


def test_a_folder_without_a_project_exits_2(cli, tmp_path) -> None:
    result = cli(tmp_path, "ls")
    assert result.exit_code == 2
    assert "no pyproject.toml" in result.stderr


# -- ls ------------------------------------------------------------------------------------


def test_ls_prints_selected_nodes_on_stdout(cli, project) -> None:
    result = cli(project, "ls", "-s", "+orders_view", "--exclude", "resource_type:test")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["project.orders", "project.orders_view"]


def test_ls_output_json_has_one_object_per_line(cli, project) -> None:
    result = cli(project, "ls", "--output", "json", "-s", "orders")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["name"], r["resource_type"]) for r in rows] == [
        ("orders", "model"),
        ("not_null_orders_id", "test"),
        ("unique_orders_id", "test"),
    ]
    assert rows[0]["original_file_path"] == "models/orders.sql"
    assert rows[0]["config"]["materialized"] == "table"
    assert rows[1]["depends_on"] == {
        "nodes": ["model.project.orders"],
        "macros": ["macro.kpi.test_not_null"],
    }
    # dbt's keys, in dbt's order
    assert list(rows[0]) == [
        "name",
        "resource_type",
        "package_name",
        "original_file_path",
        "unique_id",
        "alias",
        "config",
        "tags",
        "depends_on",
    ]


# a relationships test of int_users, which `-s stg_users` does not build
UNBUILT_MODEL_PROJECT = {
    "models/stg_users.sql": "select 1 as user_id",
    "models/stg_users.yml": "models:\n  - name: stg_users\n    columns:\n"
    "      - name: user_id\n        data_tests: [unique]\n",
    "models/int_users.sql": "{{ config(materialized='table') }}"
    "select user_id from {{ ref('stg_users') }}",
    "models/int_users.yml": "models:\n  - name: int_users\n    columns:\n"
    "      - name: user_id\n        data_tests:\n          - relationships:\n"
    "              to: ref('stg_users')\n              field: user_id\n",
}


def test_cautious_indirect_selection_leaves_out_a_test_of_a_model_not_built(
    cli, make_project
) -> None:
    """On a new warehouse, `-s stg_users` eagerly takes the relationships test
    of int_users (not built: an error); `--indirect-selection cautious`, or
    KPI_INDIRECT_SELECTION, leaves it out."""
    root = make_project(UNBUILT_MODEL_PROJECT)
    eager = cli(root, "build", "-s", "stg_users")
    assert eager.exit_code == 1
    assert "ERROR relationships_int_users_user_id" in eager.stderr
    assert "build it first (kpi build -s +int_users +stg_users)" in eager.stderr
    assert "(--indirect-selection cautious)" in eager.stderr
    for args, env in (
        (["--indirect-selection", "cautious"], None),
        ([], {"KPI_INDIRECT_SELECTION": "cautious"}),
    ):
        result = cli(root, "build", "-s", "stg_users", *args, env=env)
        assert result.exit_code == 0, result.stderr
        assert "PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2" in result.stderr
        assert "relationships" not in result.stderr
    listed = cli(root, "ls", "-s", "stg_users", "--indirect-selection", "empty")
    assert listed.stdout.split() == ["project.stg_users"]


def test_the_hint_for_a_model_not_built_reads_spark_error_text_too(make_project) -> None:
    """Spark says `[TABLE_OR_VIEW_NOT_FOUND]` where DuckDB says `Catalog
    Error`: the hint of the test above follows either (the text below is
    what Spark 4.3 printed for this project on a new warehouse)."""
    from runner.project import Project
    from runner.reporting import _missing_relation_hint

    root = make_project(UNBUILT_MODEL_PROJECT)
    nodes = Project.load(root).loaded.nodes
    test = next(n for n in nodes.values() if n.name.startswith("relationships_int_users"))
    spark = (
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`int_users` cannot be found. "
        "Verify the spelling and correctness of the schema and catalog."
    )
    hint = _missing_relation_hint(test, spark)
    assert "build it first (kpi build -s +int_users +stg_users)" in hint
    assert "(--indirect-selection cautious)" in hint
    assert _missing_relation_hint(test, "[DIVIDE_BY_ZERO] Division by zero.") == ""


def test_ls_output_keys_chooses_the_keys_as_dbt_does(cli, project) -> None:
    result = cli(project, "ls", "--output", "json", "-s", "orders_view", "--output-keys", "name")
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"name": "orders_view"}]
    both = cli(
        project, "ls", "--output", "json", "-s", "orders_view", "--output-keys", "name depends_on"
    )
    assert json.loads(both.stdout) == {
        "name": "orders_view",
        "depends_on": {"nodes": ["model.project.orders"], "macros": []},
    }
    # a test's own key: on the tests, left out of the model
    tested = cli(project, "ls", "--output", "json", "-s", "orders", "--output-keys", "column_name")
    assert tested.exit_code == 0, tested.stderr
    assert [json.loads(line) for line in tested.stdout.splitlines()] == [
        {},
        {"column_name": "id"},
        {"column_name": "id"},
    ]
    wrong = cli(project, "ls", "--output", "json", "--output-keys", "nme")
    assert wrong.exit_code == 2
    assert "no key 'nme'; the keys are alias, attached_node, checksum" in wrong.stderr


def test_ls_output_name_and_path_and_resource_type(cli, project) -> None:
    assert cli(project, "ls", "--output", "name", "--resource-type", "model").stdout == (
        "orders\norders_view\n"
    )
    assert cli(project, "ls", "--output", "path", "-s", "orders_view").stdout == (
        "models/orders_view.sql\n"
    )


def test_ls_warns_on_stderr_about_a_selector_that_matches_nothing(cli, project) -> None:
    result = cli(project, "ls", "-s", "nothing_here")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "the selector 'nothing_here' matched nothing" in result.stderr


# -- show, compile, clean ---------------------------------------------------------------------


def test_show_prints_a_model_on_stdout(cli, project) -> None:
    cli(project, "build")
    result = cli(project, "show", "orders", "--limit", "2")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["id | name", "---+-----", "1  | a", "2  | b"]
    assert result.stderr == ""


def test_show_inline_renders_jinja_and_limits(cli, project) -> None:
    cli(project, "build")
    result = cli(
        project,
        "show",
        "--inline",
        "select id from {{ ref('orders') }} where id > {{ var('min_id', 0) }} order by id desc",
        "--limit",
        "1",
        "--output",
        "json",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{"id": 3}]


def test_show_before_any_build_exits_2(cli, project) -> None:
    result = cli(project, "show", "orders")
    assert result.exit_code == 2
    assert "the warehouse does not exist yet" in result.stderr


def test_compile_writes_target_compiled_and_reports_on_stderr(cli, project) -> None:
    result = cli(project, "compile", "-s", "orders_view")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "Compiled 1 node(s)" in result.stderr
    assert (project / "target/compiled/models/orders_view.sql").read_text() == (
        'select * from "main"."orders"'
    )


def test_clean_removes_target_and_keeps_the_warehouse(cli, project) -> None:
    cli(project, "build")
    result = cli(project, "clean")
    assert result.exit_code == 0
    assert not (project / "target").exists()
    assert (project / "w.duckdb").exists()
    assert "Nothing to clean." in cli(project, "clean").stderr


def test_clean_refuses_a_target_folder_holding_anything_else(cli, project, monkeypatch) -> None:
    """Item 14: KPI_TARGET_PATH pointing at a data folder deletes nothing."""
    data = project / "data"
    (data / "export").mkdir(parents=True)
    (data / "export" / "leads.csv").write_text("lead_id\n")
    (data / "w.duckdb").write_bytes(b"not to be lost")
    (data / "manifest.json").write_text("{}")
    monkeypatch.setenv("KPI_TARGET_PATH", str(data))
    result = cli(project, "clean")
    assert result.exit_code == 2
    assert "nothing was deleted" in result.stderr
    assert "export" in result.stderr and "w.duckdb" in result.stderr
    assert sorted(p.name for p in data.iterdir()) == ["export", "manifest.json", "w.duckdb"]
    assert (data / "export" / "leads.csv").read_text() == "lead_id\n"


def test_seed_run_and_test_commands(cli, make_project) -> None:
    root = make_project(
        {
            "seeds/regions.csv": "id\n1\n1\n",
            "seeds/regions.yml": "seeds:\n  - name: regions\n    columns:\n      - name: id\n"
            "        data_tests: [unique]\n",
            "models/m.sql": "select * from {{ ref('regions') }}",
        }
    )
    seed = cli(root, "seed")
    assert (seed.exit_code, "OK loaded seed main.regions" in seed.stderr) == (0, True)
    run = cli(root, "run")
    assert (run.exit_code, "OK created view main.m" in run.stderr) == (0, True)
    test = cli(root, "test")
    assert (test.exit_code, "FAIL 1 unique_regions_id" in test.stderr) == (1, True)


# -- options ------------------------------------------------------------------------------------


def test_vars_on_the_command_line_reach_the_models(cli, make_project) -> None:
    root = make_project({"models/m.sql": "select {{ var('n', 1) }} as n"})
    cli(root, "run", "--vars", "{n: 42}")
    assert cli(root, "show", "m", "--output", "csv").stdout == "n\n42\n"


def test_the_warehouse_comes_from_kpi_warehouse(cli, project, tmp_path) -> None:
    warehouse = tmp_path / "elsewhere" / "env.duckdb"
    result = cli(project, "run", env={"KPI_WAREHOUSE": str(warehouse)})
    assert result.exit_code == 0
    assert warehouse.exists()
    assert not (project / "w.duckdb").exists()


def test_full_refresh_and_select_options(cli, project) -> None:
    cli(project, "build")
    result = cli(project, "run", "-s", "orders", "--full-refresh", "--threads", "2")
    assert result.exit_code == 0
    assert "Running 1 node(s) with 2 thread(s)." in result.stderr


# -- documentation ------------------------------------------------------------------------------


def all_commands() -> dict[str, click.Command]:
    """Every command by its full name, sub-commands of groups included."""
    found: dict[str, click.Command] = {}
    for name, command in main.commands.items():
        found[name] = command
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
    return found


@pytest.mark.parametrize("name", sorted(all_commands()))
def test_every_command_has_a_docstring_with_an_example(name: str) -> None:
    command = all_commands()[name]
    assert command.help and len(command.help.splitlines()[0]) > 10
    assert "Example:" in command.help
    assert f"kpi {name}" in command.help


def example_selectors() -> list[str]:
    """Every `-s X` / `--exclude X` of the commands' examples and the README."""
    from pathlib import Path

    texts = [command.help or "" for command in all_commands().values()]
    readme = Path(__file__).resolve().parents[1] / "README.md"
    texts.append(readme.read_text(encoding="utf-8"))
    pattern = re.compile(r"(?:^|[\s`])(?:-s|--select|--exclude) ([^\s`'\"-][^\s`'\"]*)")
    return sorted({m for text in texts for m in pattern.findall(text)})


def test_the_examples_select_something_in_this_project(runner_env: None, tmp_path) -> None:
    """A selector shown in `kpi <command> --help` or the README chooses at
    least one node of this project: an example that selects nothing only
    teaches a warning."""
    from pathlib import Path

    from runner.project import Project
    from runner.selection import select

    selectors = example_selectors()
    assert {"staging+", "tag:kpi", "+kpi_win_rate", "path:models/staging"} <= set(selectors)
    root = Path(__file__).resolve().parents[1]
    loaded = Project.load(root, target_path=tmp_path).loaded
    for selector in selectors:
        chosen = select(loaded.nodes, loaded.sources, loaded.graph, [selector])
        assert chosen.unique_ids and not chosen.unmatched, selector


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("seed", "run", "test", "build", "compile", "ls", "show", "clean"):
        assert f"  {name} " in result.stdout


def test_show_inlines_an_ephemeral_model(cli, make_project) -> None:
    root = make_project(
        {
            "models/e.sql": "{{ config(materialized='ephemeral') }}select 7 as id",
            "models/m.sql": "select * from {{ ref('e') }}",
        }
    )
    assert cli(root, "run").exit_code == 0
    inline = cli(root, "show", "--inline", "select id from {{ ref('e') }}", "--output", "csv")
    assert (inline.exit_code, inline.stdout) == (0, "id\n7\n")
    model = cli(root, "show", "e", "--output", "csv")
    assert (model.exit_code, model.stdout) == (0, "id\n7\n")


def test_a_lost_spark_session_is_not_reported_as_a_path_problem() -> None:
    from runner.cli import _os_error_message

    message, code = _os_error_message(ConnectionRefusedError(111, "Connection refused"))
    assert code == 1
    assert "Spark session stopped" in message
    assert "--target-path" not in message
    message, code = _os_error_message(PermissionError(13, "Permission denied", "/x/target"))
    assert (code, message.startswith("/x/target: cannot be used")) == (2, True)
