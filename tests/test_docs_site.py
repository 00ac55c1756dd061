"""runner/docs_site.py without a browser: the data the page embeds, on a small
project (no warehouse: types and columns from the yml) and on the real one."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from click.testing import CliRunner

from runner.cli import main
from runner.docs_site import depths

SMALL = {
    "models/staging/stg_orders.sql": "select id, amount, status "
    "from {{ source('shop', 'orders') }}",
    "models/staging/sources.yml": "sources:\n  - name: shop\n    schema: raw\n    tables:\n"
    "      - name: orders\n        columns:\n          - name: id\n          - name: amount\n"
    "          - name: status\n",
    "macros/money.sql": "{% macro to_cents(column) %}round({{ column }} * 100){% endmacro %}",
    "models/marts/paid.sql": "with o as (select * from {{ ref('stg_orders') }})\n"
    "select id, {{ to_cents('amount') }} as cents from o where status = 'paid'",
    "models/marts/paid.yml": "models:\n  - name: paid\n    description: Paid orders.\n"
    "    columns:\n      - name: id\n        data_type: integer\n        data_tests: [unique]\n"
    "      - name: cents\n        description: The amount in cents.\n",
}


def embedded(index: Path) -> dict:
    text = index.read_text("utf-8")
    found = re.search(r'<script type="application/json" id="docs-data">(.*?)</script>', text)
    assert found
    return json.loads(found.group(1))


def test_depths_layer_the_graph() -> None:
    assert depths({"s": [], "a": ["s"], "b": ["a", "s"], "c": []}) == {
        "a": 1,
        "b": 2,
        "c": 0,
        "s": 0,
    }


def test_docs_of_a_project_never_built(make_project, runner_env) -> None:
    root = make_project(SMALL)
    result = CliRunner().invoke(
        main, ["docs", "generate", "--project-dir", str(root), "--warehouse", str(root / "w.db")]
    )
    assert result.exit_code == 0, result.output
    data = embedded(root / "target" / "docs" / "index.html")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert set(nodes) >= {"orders", "stg_orders", "paid", "unique_paid_id"}
    paid = nodes["paid"]
    assert paid["description"] == "Paid orders."
    assert paid["columns"][0] == {"name": "id", "type": "integer", "description": ""}
    assert paid["upstream"] == [nodes["stg_orders"]["id"]]
    assert paid["tests"] == [nodes["unique_paid_id"]["id"]]
    assert "status" not in paid  # never run
    assert "round(amount * 100)" in paid["sql"]  # the macro, rendered
    assert data["lineage"][paid["id"]]["cents"] == [[nodes["stg_orders"]["id"], "amount"]]
    assert data["lineage"][nodes["stg_orders"]["id"]]["amount"] == [
        ["source.shop.orders", "amount"]
    ]
    assert nodes["stg_orders"]["depth"] == 1 and paid["depth"] == 2
    # the macros: on the node that calls one, and a page of their own
    assert paid["macros"] == ["macro.project.to_cents"]
    assert nodes["unique_paid_id"]["macros"] == ["macro.kpi.test_unique"]
    to_cents = nodes["to_cents"]
    assert to_cents["type"] == "macro"
    assert to_cents["path"] == "macros/money.sql"
    assert to_cents["arguments"] == ["column"]
    assert to_cents["sql"].startswith("{% macro to_cents(column) %}")
    assert to_cents["downstream"] == [paid["id"]]
    assert nodes["test_unique"]["downstream"] == [nodes["unique_paid_id"]["id"]]
    assert to_cents["depth"] is None  # not drawn in the lineage graph
    # the compiled SQL it read is where `kpi compile` puts it
    assert (root / "target" / "compiled" / "models" / "marts" / "paid.sql").exists()


def test_docs_of_the_demo_build_are_quick_and_carry_statuses(demo_build) -> None:
    project, _ = demo_build
    started = time.perf_counter()
    info = project.docs_generate()
    assert time.perf_counter() - started < 15
    data = embedded(info.index)
    by_name = {n["name"]: n for n in data["nodes"] if n["type"] != "test"}
    assert by_name["kpi_win_rate"]["status"] == "success"
    assert by_name["kpi_win_rate"]["columns"][-1]["type"] == "DOUBLE"  # from the warehouse
    assert data["lineage_errors"] == {}
    models = [n for n in data["nodes"] if n["type"] == "model"]
    assert len(data["lineage"]) == len(models)
    tests = [n for n in data["nodes"] if n["type"] == "test"]
    assert {t.get("status") for t in tests} <= {"pass", "warn"}


def test_the_server_listens_on_localhost_only(tmp_path: Path) -> None:
    import threading
    import urllib.request

    from runner.docs_site import make_server

    (tmp_path / "index.html").write_text("<p>docs</p>", encoding="utf-8")
    server = make_server(tmp_path, 0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            assert response.read() == b"<p>docs</p>"
    finally:
        server.shutdown()
        server.server_close()
