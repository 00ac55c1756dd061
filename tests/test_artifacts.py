"""runner/artifacts.py: target/manifest.json and target/run_results.json."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pytest

from runner.artifacts import write_json

FILES = {
    "seeds/regions.csv": "id\n1\n",
    "models/src.yml": "sources:\n  - name: crm\n    schema: main\n    tables:\n"
    "      - name: regions_raw\n        identifier: regions\n",
    "models/staging/stg_regions.sql": "select * from {{ ref('regions') }}",
    "models/marts/dim_regions.sql": "{{ config(materialized='table', schema='marts', "
    "tags=['daily']) }}\nselect r.id from {{ ref('stg_regions') }} as r\n"
    "join {{ source('crm', 'regions_raw') }} using (id)",
    "models/marts/dim_regions.yml": """
        models:
          - name: dim_regions
            description: One row per region.
            columns:
              - name: id
                description: The key.
                data_tests: [not_null]
    """,
    "models/marts/broken.sql": "{{ config(materialized='table') }}select 'x'::int as id",
}


@pytest.fixture
def built(make_project, load):
    root = make_project(FILES)
    project = load(root)
    project.build()
    return root


def read(root, name):
    return json.loads((root / "target" / name).read_text())


def test_manifest_lists_every_node_with_path_config_and_dependencies(built) -> None:
    nodes = read(built, "manifest.json")["nodes"]
    assert set(nodes) == {
        "seed.project.regions",
        "model.project.stg_regions",
        "model.project.dim_regions",
        "model.project.broken",
        "test.project.not_null_dim_regions_id",
    }
    dim = nodes["model.project.dim_regions"]
    assert dim["resource_type"] == "model"
    assert dim["original_file_path"] == "models/marts/dim_regions.sql"
    assert dim["patch_path"] == "models/marts/dim_regions.yml"
    assert dim["depends_on"]["nodes"] == ["model.project.stg_regions", "source.crm.regions_raw"]
    assert dim["config"]["materialized"] == "table"
    assert dim["config"]["schema"] == "marts"
    assert dim["tags"] == ["daily"]
    assert dim["relation_name"] == '"marts"."dim_regions"'
    assert dim["description"] == "One row per region."
    assert dim["columns"]["id"]["description"] == "The key."
    assert dim["fqn"] == ["project", "marts", "dim_regions"]
    assert dim["compiled_path"] == "target/compiled/models/marts/dim_regions.sql"


def test_manifest_checksum_is_the_sha256_of_the_file(built) -> None:
    nodes = read(built, "manifest.json")["nodes"]
    text = (built / "models/marts/dim_regions.sql").read_bytes()
    assert nodes["model.project.dim_regions"]["checksum"] == {
        "name": "sha256",
        "checksum": hashlib.sha256(text).hexdigest(),
    }
    seed = (built / "seeds/regions.csv").read_bytes()
    assert nodes["seed.project.regions"]["checksum"]["checksum"] == hashlib.sha256(seed).hexdigest()


def test_manifest_tests_carry_their_metadata(built) -> None:
    test = read(built, "manifest.json")["nodes"]["test.project.not_null_dim_regions_id"]
    assert test["test_metadata"] == {"name": "not_null", "kwargs": {}}
    assert test["column_name"] == "id"
    assert test["attached_node"] == "model.project.dim_regions"
    assert test["relation_name"] is None


def test_manifest_sources_and_parent_and_child_maps(built) -> None:
    manifest = read(built, "manifest.json")
    assert manifest["sources"]["source.crm.regions_raw"]["relation_name"] == '"main"."regions"'
    assert manifest["parent_map"]["model.project.stg_regions"] == ["seed.project.regions"]
    assert manifest["child_map"]["model.project.dim_regions"] == [
        "test.project.not_null_dim_regions_id"
    ]
    assert manifest["metadata"]["project_name"] == "project"


MACROS = {
    "macros/money.sql": """
{#- a comment that says {% macro not_a_macro() %} and cents(x) -#}
{% macro cents(amount) -%}
    round({{ amount }} * 100)
{%- endmacro %}

{% macro dollars(amount) %}{{ amount }}{% endmacro %}

{% macro price(amount, currency='EUR') -%}
    {{ cents(amount) }} || ' {{ "unused(" }}' || '{{ currency }}'
{%- endmacro %}
""",
    "macros/tests/positive.sql": "{% test positive(model, column_name) %}\n"
    "select * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n",
    "models/priced.sql": "{{ config(materialized='table') }}\n"
    "select {{ price('1.5') }} as label, 2 as amount\n"
    "{% if is_incremental() %}where {{ cents('amount') }} > 0{% endif %}\n"
    "-- plain SQL: dollars(1)",
    "models/priced.yml": "models:\n  - name: priced\n    columns:\n      - name: amount\n"
    "        data_tests: [positive, not_null]\n",
}


def test_manifest_lists_the_macros_and_what_each_node_calls(make_project, load) -> None:
    """dbt's `macros` and `depends_on.macros`: every call a node's Jinja makes,
    in a branch taken or not (the incremental one here); not a comment, a
    string or plain SQL that looks like one."""
    root = make_project(MACROS)
    load(root).ls()
    manifest = read(root, "manifest.json")
    nodes, macros = manifest["nodes"], manifest["macros"]
    assert nodes["model.project.priced"]["depends_on"]["macros"] == [
        "macro.project.cents",
        "macro.project.price",
    ]
    assert nodes["test.project.positive_priced_amount"]["depends_on"]["macros"] == [
        "macro.project.test_positive"
    ]
    assert nodes["test.project.not_null_priced_amount"]["depends_on"]["macros"] == [
        "macro.kpi.test_not_null"
    ]
    price = macros["macro.project.price"]
    assert price["depends_on"] == {"macros": ["macro.project.cents"]}
    assert price["original_file_path"] == "macros/money.sql"
    assert [a["name"] for a in price["arguments"]] == ["amount", "currency"]
    assert price["macro_sql"].startswith("{% macro price(amount, currency='EUR') -%}")
    assert price["macro_sql"].endswith("{%- endmacro %}")
    assert macros["macro.project.cents"]["depends_on"] == {"macros": []}
    assert macros["macro.project.test_positive"]["macro_sql"].startswith("{% test positive(")
    assert "not_a_macro" not in str(macros)
    builtin = macros["macro.kpi.test_not_null"]
    assert builtin["package_name"] == "kpi"
    assert builtin["original_file_path"] == "runner/macros/generic_tests.sql"
    assert builtin["macro_sql"].startswith("{% test not_null(model, column_name) %}")


def test_run_results_record_status_rows_timing_and_message(built) -> None:
    document = read(built, "run_results.json")
    results = {r["unique_id"]: r for r in document["results"]}
    assert {uid: r["status"] for uid, r in results.items()} == {
        "seed.project.regions": "success",
        "model.project.stg_regions": "success",
        "model.project.dim_regions": "success",
        "model.project.broken": "error",
        "test.project.not_null_dim_regions_id": "pass",
    }
    dim = results["model.project.dim_regions"]
    assert dim["rows"] == 1
    assert dim["adapter_response"] == {"rows_affected": 1}
    assert dim["message"] == "created table"
    assert dim["relation"] == "marts.dim_regions"
    [timing] = dim["timing"]
    started = datetime.fromisoformat(timing["started_at"])
    completed = datetime.fromisoformat(timing["completed_at"])
    assert started <= completed
    assert dim["execution_time"] >= 0
    assert "Could not convert string 'x'" in results["model.project.broken"]["message"]
    assert results["test.project.not_null_dim_regions_id"]["failures"] == 0
    assert document["args"]["command"] == "build"


def test_run_results_follow_the_selection(make_project, load) -> None:
    root = make_project(FILES)
    load(root).run(select=["stg_regions"])
    document = read(root, "run_results.json")
    assert [r["unique_id"] for r in document["results"]] == ["model.project.stg_regions"]
    assert document["args"]["select"] == ["stg_regions"]


def test_ls_writes_the_manifest_without_touching_the_warehouse(make_project, load) -> None:
    root = make_project(FILES)
    load(root).ls()
    assert "model.project.broken" in read(root, "manifest.json")["nodes"]
    assert not (root / "w.duckdb").exists()


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path) -> None:
    path = tmp_path / "target" / "doc.json"
    write_json(path, {"a": 1})
    write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["doc.json"]
