"""runner/data_tests.py and macros/generic_tests.sql: every generic test
passing and failing, severity, where, thresholds, stored failures, singular
and user-defined tests."""

from __future__ import annotations

import pytest

from runner.data_tests import SAMPLE_ROWS, SHARED_RELATION, condition, judge, run_test
from runner.engines.duckdb import DuckDBAdapter
from runner.errors import ProjectError
from runner.nodes import NodeConfig

# -- judging a failure count (pure) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("!= 0", 0, False),
        ("!= 0", 1, True),
        ("> 10", 10, False),
        ("> 10", 11, True),
        (">=3", 3, True),
        ("<> 2", 2, False),
        ("= 0", 0, True),
        ("== 5", 5, True),
        ("< 1", 0, True),
        ("<= 1", 2, False),
    ],
)
def test_condition(text: str, count: int, expected: bool) -> None:
    assert condition(text)(count) is expected


def test_an_unreadable_threshold_is_a_project_error() -> None:
    with pytest.raises(ProjectError, match="cannot read the threshold 'many'"):
        condition("many", "models/m.yml")


@pytest.mark.parametrize(
    ("config", "failures", "status"),
    [
        (NodeConfig(), 0, "pass"),
        (NodeConfig(), 1, "fail"),
        (NodeConfig(severity="warn"), 1, "warn"),
        (NodeConfig(severity="warn"), 0, "pass"),
        (NodeConfig(warn_if="> 5", error_if="> 10"), 5, "pass"),
        (NodeConfig(warn_if="> 5", error_if="> 10"), 6, "warn"),
        (NodeConfig(warn_if="> 5", error_if="> 10"), 11, "fail"),
        (NodeConfig(severity="warn", error_if="> 10"), 11, "warn"),
    ],
)
def test_judge(config: NodeConfig, failures: int, status: str) -> None:
    assert judge(config, failures) == status


def test_run_test_counts_failing_rows_and_keeps_the_first_five(engine) -> None:
    outcome = run_test(engine, "select range as id from range(7);", NodeConfig())
    assert (outcome.status, outcome.failures, outcome.columns) == ("fail", 7, ("id",))
    assert outcome.sample == ((0,), (1,), (2,), (3,), (4,))


def test_run_test_limit_caps_the_count(engine) -> None:
    outcome = run_test(engine, "select * from range(100)", NodeConfig(limit=3))
    assert outcome.failures == 3


def test_run_test_reports_sql_errors_as_error(engine) -> None:
    outcome = run_test(engine, "select nope from range(1)", NodeConfig())
    assert outcome.status == "error"
    assert "nope" in outcome.message
    assert outcome.blocks


TABLE = "{{ config(materialized='table') }}"

# -- every generic test, passing and failing ------------------------------------------------

MODEL = "{{{{ config(materialized='table') }}}}select * from (values {rows}) v({columns})"

# test: (columns, passing rows, failing rows, yml properties, failing row count)
CASES = {
    "not_null": (
        "id",
        "(1), (2)",
        "(1), (null)",
        "columns:\n  - name: id\n    data_tests: [not_null]",
        1,
    ),
    "unique": (
        "id",
        "(1), (2), (null), (null)",
        "(1), (1)",
        "columns:\n  - name: id\n    data_tests: [unique]",
        1,
    ),
    "accepted_values": (
        "role",
        "('rep'), ('manager'), (null)",
        "('rep'), ('admin')",
        "columns:\n  - name: role\n    data_tests:\n      - accepted_values:\n"
        "          values: [rep, manager]",
        1,
    ),
    "accepted_values_unquoted": (
        "level",
        "(1), (2)",
        "(1), (3)",
        "columns:\n  - name: level\n    data_tests:\n      - accepted_values:\n"
        "          values: [1, 2]\n          quote: false",
        1,
    ),
    "relationships": (
        "parent_id",
        "(1), (2), (null)",
        "(1), (3)",
        "columns:\n  - name: parent_id\n    data_tests:\n      - relationships:\n"
        "          to: ref('parent')\n          field: id",
        1,
    ),
    "accepted_range_inclusive": (
        "pct",
        "(0), (100)",
        "(0), (101)",
        "columns:\n  - name: pct\n    data_tests:\n      - accepted_range:\n"
        "          min_value: 0\n          max_value: 100",
        1,
    ),
    "accepted_range_exclusive": (
        "pct",
        "(1), (99)",
        "(0), (50)",
        "columns:\n  - name: pct\n    data_tests:\n      - accepted_range:\n"
        "          arguments:\n            min_value: 0\n            max_value: 100\n"
        "            inclusive: false",
        1,
    ),
    "accepted_range_min_only": (
        "pct",
        "(0), (1000)",
        "(-1)",
        "columns:\n  - name: pct\n    data_tests:\n      - accepted_range:\n          min_value: 0",
        1,
    ),
    "expression_is_true": (
        "amount, discount",
        "(10, 1), (5, 5)",
        "(10, 1), (5, 6)",
        "data_tests:\n  - expression_is_true:\n      expression: amount >= discount",
        1,
    ),
    "expression_is_true_on_a_column": (
        "amount",
        "(0), (3)",
        "(-1), (null)",
        "columns:\n  - name: amount\n    data_tests:\n      - expression_is_true:\n"
        "          expression: '>= 0'",
        2,
    ),
    "unique_combination_of_columns": (
        "team, month",
        "('a', 1), ('a', 2), ('b', 1)",
        "('a', 1), ('a', 1)",
        "data_tests:\n  - unique_combination_of_columns:\n"
        "      combination_of_columns: [team, month]",
        1,
    ),
}


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_generic_test_passes_on_good_data_and_fails_on_bad(
    case, make_project, load, output
) -> None:
    columns, good, bad, properties, failures = CASES[case]
    yml = "models:\n" + "\n".join(
        f"  - name: {name}\n{_indent(properties, 4)}" for name in ("good", "bad")
    )
    root = make_project(
        {
            "models/parent.sql": "select * from (values (1), (2)) v(id)",
            "models/good.sql": MODEL.format(rows=good, columns=columns),
            "models/bad.sql": MODEL.format(rows=bad, columns=columns),
            "models/schema.yml": yml + "\n",
        }
    )
    project = load(root)
    assert project.run().exit_code == 0
    results = project.test()
    tests = {
        node.test_metadata["attached_node"].rsplit(".", 1)[-1]: results.by_name()[node.name]
        for node in project.nodes.values()
        if node.is_test
    }
    assert tests["good"].status == "pass", output(project)
    assert tests["bad"].status == "fail"
    assert tests["bad"].failures == failures
    assert results.exit_code == 1


@pytest.mark.parametrize(
    ("test", "yml"),
    [
        (
            "unique_keys_id",
            "columns:\n      - name: id\n        data_tests:\n"
            "          - unique:\n              config: {severity: warn}",
        ),
        (
            "unique_combination_of_columns_keys__id__tag",
            "data_tests:\n      - unique_combination_of_columns:\n"
            "          combination_of_columns: [id, tag]\n          config: {severity: warn}",
        ),
    ],
)
def test_unique_tests_find_the_same_rows_when_hashes_collide(
    test: str, yml: str, make_project, load, query
) -> None:
    """`unique` and `unique_combination_of_columns` group by value only the
    rows whose hash repeats. Equal values hash alike, so a collision can
    only add rows to the second step, never a failure: with `hash` replaced
    by a function under which most values collide (the key's length), the
    compiled test still returns exactly the repeated keys."""
    rows = "('aa', 'x'), ('bb', 'x'), ('cc', 'y'), ('bb', 'x'), ('dd', null), ('dd', null), "
    rows += "('e', 'x'), (null, 'x'), (null, 'x'), ('ff', 'x'), ('ff', 'z')"
    root = make_project(
        {
            "models/keys.sql": MODEL.format(rows=rows, columns="id, tag"),
            "models/keys.yml": f"models:\n  - name: keys\n    {yml}\n",
        }
    )
    project = load(root)
    names = project.build().by_name()
    assert test in names, sorted(names)
    # id: bb, dd and ff repeat (NULL ids are not checked); (id, tag): (bb, x),
    # (dd, NULL) and (NULL, x) repeat, NULLs grouped as dbt_utils does
    assert names[test].failures == 3
    sql = (root / "target" / "compiled" / "models" / f"{test}.sql").read_text()
    assert sql.count("hash(") == 2
    colliding = sql.replace("hash(", "length(concat_ws('', ")
    colliding = colliding.replace(") as key_hash", ")) as key_hash").replace(
        ") in (select key_hash", ")) in (select key_hash"
    )
    found = sorted(query(root, colliding), key=str)
    exact = {"unique_keys_id": [("bb", 2), ("dd", 2), ("ff", 2)]}.get(
        test, [("bb", "x", 2), ("dd", None, 2), (None, "x", 2)]
    )
    assert found == exact


# -- severity, where, thresholds --------------------------------------------------------------

NULLS = (
    "{{ config(materialized='table') }}"
    "select * from (values (1, 'a'), (null, 'b'), (null, 'c')) v(id, kind)"
)


def null_test(config: str) -> dict[str, str]:
    return {
        "models/m.sql": NULLS,
        "models/child.sql": "select * from {{ ref('m') }}",
        "models/m.yml": "models:\n  - name: m\n    columns:\n      - name: id\n"
        "        data_tests:\n          - not_null:\n" + _indent(config, 14) + "\n",
    }


def test_warn_severity_warns_publishes_the_model_and_exits_zero(
    make_project, load, query, output
) -> None:
    root = make_project(null_test("config:\n  severity: warn"))
    project = load(root)
    result = project.build()
    assert result.statuses() == {"m": "success", "not_null_m_id": "warn", "child": "success"}
    assert result.exit_code == 0
    assert "WARN 2 not_null_m_id" in output(project)
    assert "Warning in test not_null_m_id (models/m.yml)" in output(project)
    assert query(root, "select count(*) from child") == [(3,)]


def test_where_limits_the_rows_a_test_sees(make_project, load) -> None:
    root = make_project(null_test("where: \"kind = 'a'\""))
    assert load(root).build().by_name()["not_null_m_id"].status == "pass"
    root2 = make_project(null_test("config:\n  where: \"kind <> 'a'\""), root=root)
    result = load(root2).build()
    assert (
        result.by_name()["not_null_m_id"].status,
        result.by_name()["not_null_m_id"].failures,
    ) == (
        "fail",
        2,
    )


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [
        ("warn_if: '> 5'\nerror_if: '> 10'", "pass"),
        ("warn_if: '>= 2'\nerror_if: '> 10'", "warn"),
        ("warn_if: '>= 1'\nerror_if: '>= 2'", "fail"),
    ],
)
def test_warn_if_and_error_if_compare_the_failure_count(
    thresholds, status, make_project, load
) -> None:
    root = make_project(null_test("config:\n" + _indent(thresholds, 2)))
    assert load(root).build().by_name()["not_null_m_id"].status == status


def test_a_failure_prints_the_count_and_the_first_rows(make_project, load, output) -> None:
    root = make_project(
        {
            "models/m.sql": TABLE + "select range % 2 as id from range(20)",
            "models/m.yml": "models:\n  - name: m\n    columns:\n      - name: id\n"
            "        data_tests: [unique]\n",
        }
    )
    project = load(root)
    project.build()
    text = output(project)
    assert "FAIL 2 unique_m_id" in text
    assert "Failure in test unique_m_id (models/m.yml)" in text
    assert "Got 2 failing row(s), configured to fail if != 0." in text
    assert "unique_field | n_records" in text
    assert "0            | 10" in text
    assert "compiled SQL: target/compiled/models/unique_m_id.sql" in text


# -- stored failures -------------------------------------------------------------------------


def test_store_failures_keeps_failing_rows_in_audit_when_the_model_is_rolled_back(
    make_project, load, query
) -> None:
    root = make_project(null_test("config:\n  store_failures: true"))
    result = load(root).build()
    assert result.by_name()["m"].status == "error"
    assert query(root, "select * from audit.not_null_m_id") == [(None,), (None,)]


def test_store_failures_of_a_published_model(make_project, load, query) -> None:
    root = make_project(null_test("config:\n  store_failures: true\n  severity: warn"))
    assert load(root).build().by_name()["m"].status == "success"
    assert query(root, "select count(*) from audit.not_null_m_id") == [(2,)]


def test_store_failures_flag_on_kpi_test_creates_the_audit_schema(
    make_project, load, query
) -> None:
    root = make_project(null_test(""))
    load(root).run()
    result = load(root).test(store_failures=True)
    assert result.by_name()["not_null_m_id"].status == "fail"
    assert query(root, "select count(*) from audit.not_null_m_id") == [(2,)]


def test_store_failures_with_several_threads_does_not_conflict(make_project, load, query) -> None:
    files = {"pyproject.toml": "[tool.kpi]\nthreads = 2\n"}
    for i in range(6):
        files[f"models/m{i}.sql"] = "{{ config(materialized='table') }}select 1 as id"
        files[f"models/m{i}.yml"] = (
            f"models:\n  - name: m{i}\n    columns:\n      - name: id\n        data_tests:\n"
            "          - accepted_values:\n              values: [2]\n"
        )
    root = make_project(files)
    result = load(root).build(store_failures=True)
    # every model is rolled back by its failing test, and every test's rows are kept
    assert {(r.resource_type, r.status) for r in result.results} == {
        ("model", "error"),
        ("test", "fail"),
    }
    assert query(
        root, "select count(*) from information_schema.tables where table_schema = 'audit'"
    ) == [(6,)]


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the test's builds run on DuckDB, in order."""
    ran: list[str] = []
    real = DuckDBAdapter.execute

    def spy(self, sql, parameters=None):  # type: ignore[no-untyped-def]
        ran.append(sql)
        return real(self, sql, parameters)

    monkeypatch.setattr(DuckDBAdapter, "execute", spy)
    return ran


def test_the_tests_of_a_model_are_counted_by_one_fused_query(
    make_project, load, statements
) -> None:
    # ids 1, NULL, 1, 3: not_null fails on 1 row (the NULL), unique on 1 key
    # (1 twice), accepted_values [1, 3] passes (NULL is not checked)
    root = make_project(
        {
            "models/m.sql": "{{ config(materialized='table') }}"
            "select * from (values (1), (null), (1), (3)) v(id)",
            "models/m.yml": """
                models:
                  - name: m
                    columns:
                      - name: id
                        data_tests:
                          - not_null:
                              config: {severity: warn}
                          - unique:
                              config: {severity: warn}
                          - accepted_values:
                              values: [1, 3]
            """,
        }
    )
    result = load(root).build()
    tests = result.by_name()
    assert {name: (tests[name].status, tests[name].failures) for name in tests if name != "m"} == {
        "not_null_m_id": ("warn", 1),
        "unique_m_id": ("warn", 1),
        "accepted_values_m_id__1__3": ("pass", 0),
    }
    counts = [s for s in statements if s.startswith(("select count(*) from (", "select 0 as test"))]
    # one fused count of the three tests; the two failing ones are then sampled
    assert len(counts) == 1 and counts[0].count("as test_index") == 3, counts
    samples = [s for s in statements if s.endswith(f"as kpi_test limit {SAMPLE_ROWS}")]
    assert len(samples) == 2, samples


def test_the_tests_of_a_view_read_it_once_through_a_shared_cte(
    make_project, load, statements
) -> None:
    # a view's query is computed once for the fused count of its tests, which
    # still count as they would one by one (one with a `where`)
    root = make_project(
        {
            "models/parent.sql": "{{ config(materialized='table') }}select 1 as id",
            "models/v.sql": "{{ config(materialized='view') }}"
            "select * from (values (1, 'a'), (null, 'b'), (1, 'c'), (3, null)) v(id, tag)",
            "models/v.yml": """
                models:
                  - name: v
                    columns:
                      - name: id
                        data_tests:
                          - not_null:
                              config: {severity: warn}
                          - unique:
                              config: {severity: warn, where: "tag <> 'a'"}
                          - relationships:
                              to: ref('parent')
                              field: id
                              config: {severity: warn}
                      - name: tag
                        data_tests:
                          - not_null:
                              config: {severity: warn}
            """,
        }
    )
    tests = load(root).build().by_name()
    counted = {name: (test.status, test.failures) for name, test in tests.items() if "_v_" in name}
    assert counted == {
        "not_null_v_id": ("warn", 1),
        "not_null_v_tag": ("warn", 1),
        "unique_v_id": ("pass", 0),
        "relationships_v_id__id__ref_parent_": ("warn", 1),
    }
    fused = [s for s in statements if "as test_index" in s]
    assert len(fused) == 1, fused
    assert fused[0].startswith(f'with {SHARED_RELATION} as (select * from "main"."v")')
    # the view is named once, in the shared CTE, which its three tests read
    # (`unique` twice: its repeated hashes, then their rows)
    assert fused[0].count('"main"."v"') == 1 and fused[0].count(SHARED_RELATION) == 5


# -- a test that cannot run -------------------------------------------------------------------


def test_a_test_with_a_sql_error_errors_rolls_back_and_skips_the_others(
    make_project, load, query, output
) -> None:
    root = make_project(
        {
            "models/m.sql": "{{ config(materialized='table') }}select 1 as id",
            "models/m.yml": """
                models:
                  - name: m
                    data_tests:
                      - expression_is_true:
                          expression: "no_such_column > 0"
                          config:
                            severity: warn
                    columns:
                      - name: id
                        data_tests: [not_null]
            """,
        }
    )
    project = load(root)
    result = project.build()
    assert result.statuses() == {
        "m": "error",
        "expression_is_true_m__no_such_column_0": "error",
        "not_null_m_id": "skipped",
    }
    assert "aborted the transaction" in result.by_name()["not_null_m_id"].message
    assert "Current transaction is aborted" not in output(project)
    assert query(root, "select count(*) from information_schema.tables where table_name = 'm'") == [
        (0,)
    ]


# -- singular and user generic tests -----------------------------------------------------------


def test_singular_tests_pass_without_rows_and_fail_with_rows(make_project, load) -> None:
    root = make_project(
        {
            "models/m.sql": "select * from (values (1), (-1)) v(amount)",
            "tests/data/assert_no_huge.sql": "select * from {{ ref('m') }} where amount > 100",
            "tests/data/assert_no_negative.sql": "select * from {{ ref('m') }} where amount < 0",
        }
    )
    result = load(root).build()
    assert result.by_name()["assert_no_huge"].status == "pass"
    assert result.by_name()["assert_no_negative"].status == "fail"
    assert result.by_name()["assert_no_negative"].failures == 1


def test_a_singular_test_with_warn_severity(make_project, load) -> None:
    root = make_project(
        {
            "models/m.sql": "select -1 as amount",
            "tests/data/assert_positive.sql": "{{ config(severity='warn') }}"
            "select * from {{ ref('m') }} where amount < 0",
        }
    )
    result = load(root).build()
    assert result.by_name()["assert_positive"].status == "warn"
    assert result.exit_code == 0


def test_a_user_generic_test_with_arguments_and_a_project_macro(make_project, load) -> None:
    root = make_project(
        {
            "macros/tests.sql": """
                {% macro is_multiple(col, n) %}{{ col }} % {{ n }} = 0{% endmacro %}
                {% test multiple_of(model, column_name, n) %}
                select * from {{ model }} where not ({{ is_multiple(column_name, n) }})
                {% endtest %}
            """,
            "models/m.sql": "select * from (values (3), (6), (7)) v(x)",
            "models/m.yml": """
                models:
                  - name: m
                    columns:
                      - name: x
                        data_tests:
                          - multiple_of: {n: 3}
                          - multiple_of:
                              name: x_is_odd_or_even
                              n: 1
            """,
        }
    )
    result = load(root).build()
    assert result.by_name()["multiple_of_m_x__3"].status == "fail"
    assert result.by_name()["multiple_of_m_x__3"].failures == 1
    assert result.by_name()["x_is_odd_or_even"].status == "pass"


def test_source_tests_run_against_the_source_table(make_project, load) -> None:
    root = make_project(
        {
            "models/src.yml": """
                sources:
                  - name: crm
                    schema: main
                    tables:
                      - name: users
                        identifier: m
                        columns:
                          - name: id
                            data_tests: [unique]
            """,
            "models/m.sql": TABLE + "select * from (values (1), (1)) v(id)",
        }
    )
    load(root).run()
    result = load(root).test()
    assert result.statuses() == {"unique_crm_users_id": "fail"}
