"""runner/execution.py and runner/scheduler.py: planning units, running them
on a thread pool as soon as their parents are done, skipping what depends on
a failure, and the write-audit-publish transaction of `build`.

Concurrency is proven with barriers and events that only release when two
things run at the same time (a sequential run would time out and fail), never
with wall-clock thresholds.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import MappingProxyType

import pytest

from runner import materializations
from runner.nodes import Node, NodeConfig
from runner.planning import plan_units
from runner.scheduler import run_graph

TIMEOUT = 10  # seconds; only reached when the code under test is wrong


# -- the scheduler (pure) ------------------------------------------------------------


class Recorder:
    """Runs nothing; records what ran and what was skipped, and why."""

    def __init__(self, failing: set[str] = frozenset()) -> None:
        self.failing = failing
        self.ran: list[str] = []
        self.skipped: dict[str, str] = {}
        self.lock = threading.Lock()

    def run(self, item: str) -> bool:
        with self.lock:
            self.ran.append(item)
        return item not in self.failing

    def skip(self, item: str, because: str) -> None:
        with self.lock:
            self.skipped[item] = because


#  a -> b -> c      x -> y
CHAINS = {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"]}


def test_run_graph_runs_every_item_after_its_parents() -> None:
    rec = Recorder()
    run_graph(CHAINS, rec.run, threads=1, on_skip=rec.skip)
    # ready items with more work downstream go first, ties by name
    assert rec.ran == ["a", "b", "x", "c", "y"]
    assert rec.skipped == {}


def test_the_longest_path_of_last_run_seconds_starts_first() -> None:
    """With the seconds each item took last time, the ready item with the
    longest path of work below it goes first: x (1 s) then y (5 s) outweigh
    a, b and c (1 s each), though a has more descendants; unknown items
    count 0 s."""
    rec = Recorder()
    seconds = {"a": 1.0, "b": 1.0, "c": 1.0, "x": 1.0, "y": 5.0}
    run_graph(CHAINS, rec.run, threads=1, on_skip=rec.skip, seconds=seconds)
    assert rec.ran == ["x", "y", "a", "b", "c"]
    # a path of 3 s against 2 s: the a chain first again
    rec = Recorder()
    run_graph(CHAINS, rec.run, threads=1, on_skip=rec.skip, seconds={"c": 3.0, "y": 2.0})
    assert rec.ran == ["a", "b", "c", "x", "y"]


@pytest.mark.parametrize("threads", [1, 2])
def test_a_failure_skips_its_descendants_and_the_other_branch_finishes(threads: int) -> None:
    rec = Recorder(failing={"a"})
    run_graph(CHAINS, rec.run, threads=threads, on_skip=rec.skip)
    assert sorted(rec.ran) == ["a", "x", "y"]
    assert rec.skipped == {"b": "a", "c": "a"}


def test_fail_fast_starts_nothing_after_the_first_failure() -> None:
    rec = Recorder(failing={"a"})
    run_graph(CHAINS, rec.run, threads=1, on_skip=rec.skip, fail_fast=True)
    assert rec.ran == ["a"]
    assert rec.skipped == {"b": "a", "c": "a", "x": "", "y": ""}


def test_two_threads_run_independent_items_at_the_same_time() -> None:
    both_running = threading.Barrier(2, timeout=TIMEOUT)

    def run(item: str) -> bool:
        both_running.wait()  # raises BrokenBarrierError if run one at a time
        return True

    run_graph({"a": [], "b": []}, run, threads=2, on_skip=lambda *_: None)


def test_an_item_starts_as_soon_as_its_own_parents_are_done() -> None:
    # slow is still running when fast_child must run: not level by level
    fast_child_done = threading.Event()
    ran: list[str] = []

    def run(item: str) -> bool:
        if item == "slow":
            assert fast_child_done.wait(TIMEOUT), "fast_child waited for slow"
        if item == "fast_child":
            fast_child_done.set()
        ran.append(item)
        return True

    parents = {"slow": [], "fast": [], "fast_child": ["fast"], "slow_child": ["slow"]}
    run_graph(parents, run, threads=2, on_skip=lambda *_: None)
    assert ran.index("fast_child") < ran.index("slow")


def test_one_thread_never_runs_two_items_at_once() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def run(item: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        with lock:
            running -= 1
        return True

    run_graph({str(i): [] for i in range(8)}, run, threads=1, on_skip=lambda *_: None)
    assert most == 1


# -- planning units (pure) ------------------------------------------------------------


def _node(kind: str, name: str, deps: tuple[str, ...] = (), **config) -> Node:
    meta = None
    if kind == "test":
        meta = MappingProxyType({"name": "x", "kwargs": {}, "attached_node": deps[0]})
    return Node(
        unique_id=f"{kind}.p.{name}",
        resource_type=kind,
        name=name,
        path=f"models/{name}.sql",
        raw_code="",
        checksum="",
        config=NodeConfig(**config),
        depends_on=deps,
        test_metadata=meta,
    )


PLAN_NODES = {
    n.unique_id: n
    for n in [
        _node("seed", "s", materialized="seed"),
        _node("model", "e", ("seed.p.s",), materialized="ephemeral"),
        _node("model", "a", ("model.p.e",)),
        _node("model", "b", ("model.p.a",)),
        _node("test", "t_a", ("model.p.a",)),
        _node("test", "t_ab", ("model.p.a", "model.p.b")),
        _node("test", "t_s", ("seed.p.s",)),
    ]
}


def test_build_attaches_each_test_to_the_model_it_audits() -> None:
    units, parents = plan_units(PLAN_NODES, set(PLAN_NODES), "build")
    assert {k: [t.name for t in u.tests] for k, u in units.items()} == {
        "seed.p.s": ["t_s"],
        "model.p.a": ["t_a"],
        "model.p.b": ["t_ab"],  # the model downstream of every tested node
    }
    assert parents == {
        "seed.p.s": set(),
        "model.p.a": {"seed.p.s"},  # through the ephemeral, which is not a unit
        "model.p.b": {"model.p.a"},
    }


def test_run_plans_models_only_and_test_plans_tests_alone() -> None:
    units, _ = plan_units(PLAN_NODES, set(PLAN_NODES), "run")
    assert set(units) == {"model.p.a", "model.p.b"}
    units, parents = plan_units(PLAN_NODES, set(PLAN_NODES), "test")
    assert set(units) == {"test.p.t_a", "test.p.t_ab", "test.p.t_s"}
    assert all(not u.tests for u in units.values())
    assert parents["test.p.t_ab"] == set()


def test_a_test_whose_model_is_not_selected_runs_on_its_own_in_build() -> None:
    units, parents = plan_units(PLAN_NODES, {"model.p.b", "test.p.t_ab"}, "build")
    assert set(units) == {"model.p.b"}
    assert [t.name for t in units["model.p.b"].tests] == ["t_ab"]
    units, parents = plan_units(PLAN_NODES, {"model.p.a", "test.p.t_ab"}, "build")
    assert set(units) == {"model.p.a", "test.p.t_ab"}
    assert parents["test.p.t_ab"] == {"model.p.a"}


# -- build: write, audit, publish -------------------------------------------------------

UNIQUE_ID = """
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique]
"""
ORDERS = "{{ config(materialized='table') }}select * from (values %s) v(id)"


def orders_project(make_project) -> Path:
    return make_project(
        {
            "models/orders.sql": ORDERS % "(1), (2)",
            "models/orders.yml": UNIQUE_ID,
            "models/orders_daily.sql": "{{ config(materialized='table') }}"
            "select count(*) as n from {{ ref('orders') }}",
            "models/orders_report.sql": "select * from {{ ref('orders_daily') }}",
            "models/customers.sql": "{{ config(materialized='table') }}select 1 as id",
        }
    )


def test_a_build_schedules_by_the_seconds_of_the_last_run(
    make_project, load, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler is given how long each unit took last time: nothing
    before the first build, then each model's seconds with its tests'."""
    from runner import execution

    given: list[dict[str, float]] = []
    plain = execution.run_graph

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        given.append(dict(kwargs["seconds"]))
        return plain(*args, **kwargs)

    monkeypatch.setattr(execution, "run_graph", recording)
    root = orders_project(make_project)
    assert load(root).build().exit_code == 0
    second = load(root).build(full_refresh=True)
    assert load(root).build().exit_code == 0
    assert given[0] == {}  # no run before the first
    orders = "model.project.orders"
    assert set(given[1]) == {
        orders,
        "model.project.orders_daily",
        "model.project.orders_report",
        "model.project.customers",
    }
    # the third build was given the second's times: orders with its unique test
    took = {r.unique_id: r.execution_time for r in second.results}
    assert given[2][orders] > 0
    assert given[2][orders] == pytest.approx(took[orders] + took["test.project.unique_orders_id"])


def test_a_failing_error_test_rolls_back_its_model_and_skips_descendants(
    make_project, load, query, output
) -> None:
    root = orders_project(make_project)
    assert load(root).build().exit_code == 0
    make_project({"models/orders.sql": ORDERS % "(1), (1), (3)"}, root=root)
    project = load(root)
    result = project.build()
    assert result.statuses() == {
        "customers": "success",
        "orders": "error",
        "unique_orders_id": "fail",
        "orders_daily": "skipped",
        "orders_report": "skipped",
    }
    assert result.exit_code == 1
    assert "previous version is kept" in result.by_name()["orders"].message
    assert result.by_name()["orders_daily"].message == "skipped because orders failed"
    # the previous versions stay, exactly
    assert query(root, "select id from orders order by id") == [(1,), (2,)]
    assert query(root, "select n from orders_daily") == [(2,)]
    text = output(project)
    assert "ERROR table main.orders not published" in text
    assert "SKIP table main.orders_daily" in text
    # and the build says which relations are now stale
    assert result.stale == ["main.orders", "main.orders_daily", "main.orders_report"]
    assert (
        "keep their previous version, now stale: main.orders, main.orders_daily, "
        "main.orders_report" in text
    )


def test_a_rolled_back_view_keeps_its_previous_definition(make_project, load, query) -> None:
    view = "select * from (values %s) v(id)"
    root = make_project(
        {"models/v.sql": view % "(1)", "models/v.yml": UNIQUE_ID.replace("orders", "v")}
    )
    load(root).build()
    make_project({"models/v.sql": view % "(2), (2)"}, root=root)
    assert load(root).build().by_name()["v"].status == "error"
    assert query(root, "select id from v") == [(1,)]


def test_a_warn_test_does_not_roll_back_or_skip(make_project, load, query) -> None:
    root = orders_project(make_project)
    make_project(
        {
            "models/orders.sql": ORDERS % "(1), (1)",
            "models/orders.yml": UNIQUE_ID.replace(
                "[unique]", "[{unique: {config: {severity: warn}}}]"
            ),
        },
        root=root,
    )
    result = load(root).build()
    assert result.statuses()["orders"] == "success"
    assert result.statuses()["orders_report"] == "success"
    assert result.exit_code == 0
    assert query(root, "select n from orders_daily") == [(2,)]


def test_a_model_error_skips_descendants_while_independent_models_finish(
    make_project, load, output
) -> None:
    root = orders_project(make_project)
    make_project({"models/orders.sql": ORDERS % "('x'::int)"}, root=root)
    project = load(root)
    result = project.run(threads=2)
    assert result.statuses() == {
        "customers": "success",
        "orders": "error",
        "orders_daily": "skipped",
        "orders_report": "skipped",
    }
    text = output(project)
    assert "Error in model orders (models/orders.sql)" in text
    assert "Conversion Error" in text


def test_fail_fast_skips_everything_not_yet_started(make_project, load) -> None:
    root = make_project(
        {
            "models/a_broken.sql": "{{ config(materialized='table') }}select 'x'::int",
            "models/b.sql": "select 1",
            "models/c.sql": "select * from {{ ref('b') }}",
        }
    )
    result = load(root).run(fail_fast=True, threads=1)
    # b goes first (it has work downstream), then a_broken stops the run
    assert result.statuses() == {"a_broken": "error", "b": "success", "c": "skipped"}
    assert result.by_name()["c"].message == "skipped (--fail-fast)"


def test_threads_build_independent_models_at_the_same_time(make_project, load, monkeypatch) -> None:
    build_table = materializations.build_table
    both_building = threading.Barrier(2, timeout=TIMEOUT)

    def build_slow_tables_together(cur, relation, sql):
        if relation.identifier.startswith("slow"):
            both_building.wait()  # a sequential run never gets past this
        return build_table(cur, relation, sql)

    monkeypatch.setattr(materializations, "build_table", build_slow_tables_together)
    root = make_project(
        {
            "models/slow_a.sql": "{{ config(materialized='table') }}select 1 as id",
            "models/slow_b.sql": "{{ config(materialized='table') }}select 2 as id",
        }
    )
    result = load(root).run(threads=2)
    assert result.statuses() == {"slow_a": "success", "slow_b": "success"}
    a, b = result.by_name()["slow_a"], result.by_name()["slow_b"]
    assert a.started_at < b.completed_at and b.started_at < a.completed_at


def test_an_unexpected_exception_fails_one_model_and_the_thread_goes_on(
    make_project, load, query, monkeypatch
) -> None:
    build_table = materializations.build_table

    def broken_for_a(cur, relation, sql):
        if relation.identifier == "a":
            raise RuntimeError("bug")
        return build_table(cur, relation, sql)

    monkeypatch.setattr(materializations, "build_table", broken_for_a)
    root = make_project(
        {
            "models/a.sql": "{{ config(materialized='table') }}select 1 as id",
            "models/a.yml": UNIQUE_ID.replace("orders", "a"),
            "models/b.sql": "{{ config(materialized='table') }}select 2 as id",
        }
    )
    result = load(root).build(threads=1)
    assert result.statuses() == {"a": "error", "unique_a_id": "skipped", "b": "success"}
    assert "internal error: RuntimeError('bug')" in result.by_name()["a"].message
    assert "PASS=1 WARN=0 ERROR=1 SKIP=1 TOTAL=3" in result.summary
    assert query(root, "select id from b") == [(2,)]


def test_threads_setting_comes_from_pyproject(make_project, load, output) -> None:
    root = make_project({"pyproject.toml": "[tool.kpi]\nthreads = 3\n", "models/a.sql": "select 1"})
    project = load(root)
    project.run()
    assert "Running 1 node(s) with 3 thread(s)." in output(project)


# -- what the run prints ---------------------------------------------------------------------


def test_progress_lines_and_summary_counts(make_project, load, output) -> None:
    root = orders_project(make_project)
    make_project(
        {
            "models/orders.sql": ORDERS % "(1), (1)",
            "tests/data/assert_customers.sql": "{{ config(severity='warn') }}"
            "select * from {{ ref('customers') }}",
        },
        root=root,
    )
    project = load(root)
    result = project.build()
    text = output(project)
    assert re.search(
        r"^  \d of 6 OK created table main\.customers \.+ \[1 rows in \d+\.\d\ds\]$", text, re.M
    )
    assert re.search(
        r"^  \d of 6 WARN 1 assert_customers \.+ \[WARN 1 in \d+\.\d\ds\]$", text, re.M
    )
    assert re.search(r"^  \d of 6 SKIP view main\.orders_report \.+ \[SKIP\]$", text, re.M)
    assert "PASS=1 WARN=1 ERROR=2 SKIP=2 TOTAL=6" in result.summary
    assert result.summary in text


def test_nothing_selected_warns(make_project, load, output) -> None:
    root = make_project({"models/a.sql": "select 1"})
    project = load(root)
    result = project.seed()
    assert result.results == []
    assert "nothing to seed" in output(project)


def test_run_names_the_seeds_its_models_read_that_are_not_loaded(make_project, load, output):
    root = make_project(
        {
            "seeds/regions.csv": "id\n1\n",
            "models/m.sql": "select * from {{ ref('regions') }}",
            "models/n.sql": "select 1 as id",
        }
    )
    project = load(root)
    assert project.run().exit_code == 1
    assert (
        "Warning: seed regions is not in the warehouse yet, and m read it: load it first "
        "with `kpi seed` (or run `kpi build`)." in output(project)
    )
    project = load(root)
    assert project.seed().exit_code == 0
    assert project.run().exit_code == 0
    assert "Warning" not in output(project)
