"""Loading a raw export: contract checks, rejected rows, atomicity, increments."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from runner import raw_files
from runner.errors import LoadError
from runner.project import Project
from runner.reporting import Reporter

SOURCES = """
sources:
  - name: shop
    schema: raw
    meta: {load_from_export: true}
    tables:
      - name: people
        meta:
          primary_key: [person_id]
          reject_when:
            - when: "age < 0"
              reason: "age is negative"
        columns:
          - {name: person_id, data_type: id, meta: {required: true}}
          - {name: name, data_type: text, meta: {required: true}}
          - {name: age, data_type: integer}
          - {name: joined, data_type: date}
          - {name: seen_at, data_type: timestamp}
          - {name: active, data_type: bool}
          - {name: balance, data_type: money}
      - name: pets
        meta:
          primary_key: [pet_id]
        columns:
          - {name: pet_id, data_type: id, meta: {required: true}}
          - {name: owner_id, data_type: id}
"""
PEOPLE_HEADER = "person_id,name,age,joined,seen_at,active,balance\n"
PETS = "pet_id,owner_id\np1,a\n"


@pytest.fixture
def shop(tmp_path: Path) -> Callable[..., tuple[Project, Path, io.StringIO]]:
    """A project whose contract has two tables, and an export folder to fill."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.kpi]\n")
    (root / "models" / "sources.yml").write_text(SOURCES)
    export = tmp_path / "export"
    export.mkdir()

    def make(people: str | bytes | None = None, pets: str | None = PETS):
        if people is not None:
            data = people if isinstance(people, bytes) else people.encode("utf-8")
            (export / "people.csv").write_bytes(data)
        if pets is not None:
            (export / "pets.csv").write_text(pets, encoding="utf-8")
        out = io.StringIO()
        project = Project.load(
            root, warehouse=tmp_path / "w.duckdb", raw_dir=export, reporter=Reporter(stream=out)
        )
        return project, export, out

    return make


def query(project: Project, sql: str) -> list[tuple]:
    con = duckdb.connect(str(project.settings.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_valid_rows_load_with_contract_types(shop) -> None:
    project, _, _ = shop(
        PEOPLE_HEADER
        + "a,Ann,41,2025-01-31,2026-03-01T10:30:00+01:00,TRUE,12.5\n"
        + "b,Bo,,,2026-03-01,no,\n"
        + "c,Cy,7,2025-02-01,2026-03-01 09:30:00,1,-0.0001\n"
        + "d,Di,8,2025-02-01,2026-03-01T09:30:00Z,f,99999999999999.9999\n"
    )
    report = project.load_raw()
    assert report.rows == 5 and report.rejected == 0
    rows = query(project, "select * exclude (_load_id) from raw.people order by person_id")
    assert rows == [
        ("a", "Ann", 41, date(2025, 1, 31), datetime(2026, 3, 1, 9, 30), True, Decimal("12.5")),
        ("b", "Bo", None, None, datetime(2026, 3, 1, 0, 0), False, None),
        ("c", "Cy", 7, date(2025, 2, 1), datetime(2026, 3, 1, 9, 30), True, Decimal("-0.0001")),
        (
            "d",
            "Di",
            8,
            date(2025, 2, 1),
            datetime(2026, 3, 1, 9, 30),
            False,
            Decimal("99999999999999.9999"),
        ),
    ]
    types = dict(query(project, "select column_name, column_type from (describe raw.people)"))
    assert types["balance"] == "DECIMAL(18,4)" and types["seen_at"] == "TIMESTAMP"


def test_three_offset_styles_become_the_same_utc_instant(shop) -> None:
    project, _, _ = shop(
        PEOPLE_HEADER
        + "a,A,,,2026-03-01T10:30:00+01:00,,\n"
        + "b,B,,,2026-03-01T10:30:00+0100,,\n"
        + "c,C,,,2026-03-01T04:30:00-05,,\n"
        + "d,D,,,2026-03-01T09:30:00Z,,\n"
    )
    project.load_raw()
    assert query(project, "select distinct seen_at from raw.people") == [
        (datetime(2026, 3, 1, 9, 30),)
    ]


def test_missing_file_names_the_file(shop) -> None:
    project, export, _ = shop(None)
    with pytest.raises(LoadError) as info:
        project.load_raw()
    assert str(export / "people.csv") in str(info.value)
    assert "missing" in str(info.value)


def test_missing_required_column_names_file_and_column(shop) -> None:
    project, export, _ = shop("person_id,age\na,1\n")
    with pytest.raises(LoadError) as info:
        project.load_raw()
    text = str(info.value)
    assert f"{export / 'people.csv'}:1" in text and "name" in text


def test_a_column_in_another_case_is_the_contract_column(shop) -> None:
    project, _, _ = shop("person_id,Name\na,1\n")
    project.load_raw()
    assert query(project, "select name from raw.people") == [("1",)]


def test_semicolon_file_is_recognised(shop) -> None:
    project, _, _ = shop("person_id;name\na;b\n")
    with pytest.raises(LoadError, match="not to be comma-separated"):
        project.load_raw()


def test_extra_columns_are_ignored_with_a_warning(shop) -> None:
    project, _, out = shop("person_id,name,favourite_colour\na,Ann,blue\n")
    project.load_raw()
    assert "extra column(s) favourite_colour ignored" in out.getvalue()
    assert query(project, "select person_id, name, age from raw.people") == [("a", "Ann", None)]


def test_empty_file_is_an_error_header_only_is_empty_table(shop) -> None:
    project, _, _ = shop("")
    with pytest.raises(LoadError, match="is empty"):
        project.load_raw()
    project, _, _ = shop(PEOPLE_HEADER)
    project.load_raw()
    assert query(project, "select count(*) from raw.people") == [(0,)]


def test_bad_value_fails_with_file_line_column_and_value(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,old,,,,\n")
    with pytest.raises(LoadError) as info:
        project.load_raw()
    text = str(info.value)
    assert str(export / "people.csv") in text
    assert "line 3: column age: 'old' is not an integer" in text
    assert not Path(project.settings.warehouse).exists() or query(
        project,
        "select count(*) from information_schema.tables where table_schema = 'raw' "
        "and table_name = 'people'",
    ) == [(0,)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("a,,1,,,,", "missing required value in column name"),
        ("a,A,-1,,,,", "age is negative"),
        ("a,A,1,2025-2-1,,,", "column joined: '2025-2-1' is not a date"),
        ("a,A,1,2025-02-30,,,", "column joined: '2025-02-30' is not a date"),
        ("a,A,1,,yesterday,,", "column seen_at: 'yesterday' is not an ISO 8601 timestamp"),
        ("a,A,1,,,maybe,", "column active: 'maybe' is not a boolean"),
        ("a,A,1,,,,1.23456", "column balance: '1.23456' is not money"),
        ("a,A,1,,,,1e3", "column balance: '1e3' is not money"),
        ("a,A,1,,,,123456789012345", "column balance: '123456789012345' is not money"),
        ("a,A", "wrong number of fields: 2, expected 7"),
    ],
)
def test_each_rejection_rule(shop, row: str, reason: str) -> None:
    project, _, _ = shop(PEOPLE_HEADER + "z,Zed,1,,,,\n" + row + "\n")
    with pytest.raises(LoadError) as info:
        project.load_raw()
    assert f"line 3: {reason}" in str(info.value)


def test_quarantine_loads_good_rows_and_keeps_bad_ones(shop) -> None:
    project, _, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,x,,,,\na,Again,2,,,,\nc,Cy,-4,,,,\n")
    report = project.load_raw(on_bad_rows="quarantine")
    assert report.rejected == 3
    assert query(project, "select person_id, name from raw.people") == [("a", "Ann")]
    kept = query(
        project,
        "select file_name, line_number, reason, raw_row from raw.rejected_rows order by 2",
    )
    assert [(f, line) for f, line, _, _ in kept] == [
        ("people.csv", 3),
        ("people.csv", 4),
        ("people.csv", 5),
    ]
    assert kept[0][2] == "column age: 'x' is not an integer"
    assert kept[1][2].startswith("duplicate key (person_id)")
    assert kept[2][2] == "age is negative"
    assert '"name":"Bo"' in kept[0][3]


def test_duplicate_key_keeps_the_first_row_in_file_order(shop) -> None:
    project, _, _ = shop(PEOPLE_HEADER + "a,First,1,,,,\na,Second,2,,,,\n")
    project.load_raw(on_bad_rows="quarantine")
    assert query(project, "select name from raw.people") == [("First",)]


def test_quoted_commas_newlines_bom_and_crlf(shop) -> None:
    text = (
        "\ufeff"
        + PEOPLE_HEADER.replace("\n", "\r\n")
        + 'a,"Smith, Ann",1,,,,\r\n'
        + 'b,"two\r\nlines",2,,,,\r\n'
        + 'c,"say ""hi""",3,,,,\r\n'
        + "d,Dee,bad,,,,\r\n"
    )
    project, _, _ = shop(text)
    project.load_raw(on_bad_rows="quarantine")
    names = dict(query(project, "select person_id, name from raw.people"))
    assert names == {"a": "Smith, Ann", "b": "two\r\nlines", "c": 'say "hi"'}
    # the bad row is on physical line 6: header, a, b (two lines), c, d
    assert query(project, "select line_number from raw.rejected_rows") == [(6,)]


def test_non_ascii_names_survive(shop) -> None:
    project, _, _ = shop(PEOPLE_HEADER + "a,王小明,1,,,,\nb,Zoë 🚀,2,,,,\n")
    project.load_raw()
    assert dict(query(project, "select person_id, name from raw.people")) == {
        "a": "王小明",
        "b": "Zoë 🚀",
    }


def test_latin1_bytes_reject_the_row_with_its_line(shop) -> None:
    data = (PEOPLE_HEADER + "a,Ann,1,,,,\nb,Jos").encode() + b"\xe9" + b",2,,,,\nc,Cy,3,,,,\n"
    project, _, _ = shop(data)
    with pytest.raises(LoadError, match="line 3: not valid UTF-8"):
        project.load_raw()


def test_unterminated_quote_is_reported(shop) -> None:
    project, _, _ = shop(PEOPLE_HEADER + 'a,Ann,1,,,,\nb,"Bo,2,,,,\nc,Cy,3,,,,\n')
    with pytest.raises(LoadError, match="line 3: a quoted field is never closed"):
        project.load_raw()


def test_failed_load_leaves_previous_tables_exactly(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n", pets="pet_id,owner_id\np1,a\n")
    project.load_raw()
    before = query(project, "select * from raw.people"), query(project, "select * from raw.pets")
    (export / "pets.csv").write_text("pet_id,owner_id\np2,b\n")
    (export / "people.csv").write_text(PEOPLE_HEADER + "a,Ann,oops,,,,\n")
    with pytest.raises(LoadError):
        project.load_raw()
    after = query(project, "select * from raw.people"), query(project, "select * from raw.pets")
    assert after == before


def test_unchanged_files_are_skipped_changed_reloaded(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    first = project.load_raw()
    assert set(first.actions.values()) == {"reload"}
    again = project.load_raw()
    assert set(again.actions.values()) == {"skip"}
    people = export / "people.csv"
    os.utime(people, ns=(people.stat().st_atime_ns, people.stat().st_mtime_ns + 10**9))
    assert set(project.load_raw().actions.values()) == {"skip"}  # touched, same bytes
    people.write_text(PEOPLE_HEADER + "b,Bo,2,,,,\n")
    changed = project.load_raw()
    assert changed.actions == {"people": "reload", "pets": "skip"}
    assert query(project, "select person_id from raw.people") == [("b",)]


def test_new_part_file_is_appended_and_checked_against_loaded_keys(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    (export / "people.2026-11.csv").write_text(PEOPLE_HEADER + "b,Bo,2,,,,\na,Again,3,,,,\n")
    report = project.load_raw(on_bad_rows="quarantine")
    assert report.actions["people"] == "append"
    assert query(project, "select person_id, name, _load_id from raw.people order by 1") == [
        ("a", "Ann", 1),
        ("b", "Bo", 2),
    ]
    assert query(project, "select file_name, line_number, reason from raw.rejected_rows") == [
        ("people.2026-11.csv", 3, "duplicate key: already loaded from an earlier file")
    ]


def test_parquet_files_load_with_their_types(shop, tmp_path: Path) -> None:
    project, export, _ = shop(None)
    con = duckdb.connect()
    con.execute(
        f"""copy (select 'a' as person_id, 'Ann' as name, 3 as age,
                  date '2025-01-01' as joined, timestamp '2026-01-01 10:00' as seen_at,
                  true as active, 10.25 as balance, 'x' as ignored)
            to '{export / "people.parquet"}' (format parquet)"""
    )
    report = project.load_raw()
    assert report.rejected == 0
    assert query(project, "select * exclude (_load_id) from raw.people") == [
        ("a", "Ann", 3, date(2025, 1, 1), datetime(2026, 1, 1, 10), True, Decimal("10.25"))
    ]


def test_both_csv_and_parquet_for_one_table_is_an_error(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER)
    (export / "people.parquet").write_bytes(b"")
    with pytest.raises(LoadError, match=r"both people\.csv and people\.parquet"):
        project.load_raw()


def test_a_100_mb_file_with_one_bad_row_near_the_end(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER)
    rows = 1_000_000
    con = duckdb.connect()
    con.execute(
        f"""copy (select 'p' || range as person_id,
                  'a name long enough to make one hundred megabytes, row ' || range as name,
                  case when range = {rows - 10} then 'bad' else '1' end as age,
                  '2025-01-01' as joined, '2026-01-01 10:00:00' as seen_at,
                  'true' as active, '12.50' as balance
                  from range({rows}) order by range)
            to '{export / "people.csv"}' (header, format csv)"""
    )
    assert (export / "people.csv").stat().st_size > 100_000_000
    report = project.load_raw(on_bad_rows="quarantine")
    assert f"line {rows - 8}: column age: 'bad' is not an integer" in report.rejection_text()
    assert report.rows == rows - 1 + 1  # every other row (none silently dropped), plus the pet
    assert query(project, "select line_number, reason from raw.rejected_rows") == [
        (rows - 8, "column age: 'bad' is not an integer")
    ]


def test_reload_keeps_the_load_id_of_unchanged_rows_and_counts_changes(shop) -> None:
    project, export, out = shop(PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,2,,,,\nc,Cy,3,,,,\n")
    project.load_raw()
    # b changes, c disappears, d is new; a stays as it was
    (export / "people.csv").write_text(PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bob,2,,,,\nd,Di,4,,,,\n")
    project.load_raw()
    assert query(project, "select person_id, _load_id from raw.people order by 1") == [
        ("a", 1),
        ("b", 2),
        ("d", 2),
    ]
    assert query(
        project,
        "select action, inserted_rows, updated_rows, deleted_rows from _kpi.table_changes "
        "where relation = 'raw.people' order by load_id",
    ) == [("reload", 3, 0, 0), ("reload", 1, 1, 1)]
    assert (
        "people: compared people.csv with the loaded rows: 1 new, 1 changed, 1 removed"
        in out.getvalue()
    )


def test_reload_compares_empty_values_as_values(shop) -> None:
    # a: a value that empties; b: an empty value that fills; c: empty in both
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,,,,,\nc,Cy,,,,,\n")
    project.load_raw()
    (export / "people.csv").write_text(PEOPLE_HEADER + "a,Ann,,,,,\nb,Bo,2,,,,\nc,Cy,,,,,\n")
    project.load_raw()
    assert query(project, "select person_id, _load_id from raw.people order by 1") == [
        ("a", 2),
        ("b", 2),
        ("c", 1),
    ]
    assert query(
        project,
        "select inserted_rows, updated_rows, deleted_rows from _kpi.table_changes "
        "where relation = 'raw.people' and load_id = 2",
    ) == [(0, 2, 0)]


def test_reload_of_a_table_without_key_compares_rows_as_a_multiset(tmp_path: Path) -> None:
    # an association table (no primary key), written again in another order:
    # (a,1) twice -> once, (b,2) kept, (c,3) new; unchanged rows keep load 1
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.kpi]\n")
    (root / "models" / "sources.yml").write_text(
        "sources:\n  - name: shop\n    schema: raw\n    meta: {load_from_export: true}\n"
        "    tables:\n      - name: links\n        columns:\n"
        "          - {name: left_id, data_type: id, meta: {required: true}}\n"
        "          - {name: right_id, data_type: id}\n"
    )
    export = tmp_path / "export"
    export.mkdir()
    (export / "links.csv").write_text("left_id,right_id\na,1\nb,2\na,1\n")
    project = Project.load(
        root,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=export,
        reporter=Reporter(stream=io.StringIO()),
    )
    project.load_raw()
    (export / "links.csv").write_text("left_id,right_id\nc,3\nb,2\na,1\n")
    project.load_raw()
    assert query(project, "select left_id, right_id, _load_id from raw.links order by all") == [
        ("a", "1", 1),
        ("b", "2", 1),
        ("c", "3", 2),
    ]
    assert query(
        project,
        "select inserted_rows, updated_rows, deleted_rows from _kpi.table_changes "
        "where relation = 'raw.links' and load_id = 2",
    ) == [(1, 0, 1)]


def test_appended_part_is_recorded_as_an_append(shop) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    (export / "people.part-2.csv").write_text(PEOPLE_HEADER + "b,Bo,2,,,,\n")
    project.load_raw()
    assert query(
        project,
        "select load_id, action, inserted_rows, updated_rows, deleted_rows "
        "from _kpi.table_changes where relation = 'raw.people' order by load_id",
    ) == [(1, "reload", 1, 0, 0), (2, "append", 1, 0, 0)]


def test_extra_empty_fields_at_the_end_of_a_row_are_accepted(shop) -> None:
    # DuckDB's CSV reader ignores trailing empty fields; a non-empty extra
    # field is a wrong field count
    project, _, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,,\nb,Bo,2,,,,,x\n")
    report = project.load_raw(on_bad_rows="quarantine")
    assert query(project, "select person_id from raw.people") == [("a",)]
    assert "line 3: wrong number of fields: 8, expected 7" in report.rejection_text()


# -- never a silently wrong number (issue 14, the loader's items) ------------------


def test_item6_overlapping_part_file_rows_are_repeated_keys(tmp_path: Path) -> None:
    """item 6: a stage-history part file repeating rows of the base file does
    not double-count; each repeat is rejected with its file and line."""
    root = Path(__file__).resolve().parents[1]
    export = tmp_path / "export"
    shutil.copytree(root / "tests" / "fixtures" / "crm_small", export)
    base = (export / "opportunity_stage_history.csv").read_text(encoding="utf-8")
    header, first, second = base.splitlines()[:3]
    (export / "opportunity_stage_history.part1.csv").write_text(
        f"{header}\n{second}\no77,prospecting,2026-02-01 10:00:00\n{first}\n", encoding="utf-8"
    )
    project = Project.load(
        root,
        warehouse=tmp_path / "w.duckdb",
        raw_dir=export,
        target_path=tmp_path / "target",
        reporter=Reporter(stream=io.StringIO()),
    )
    with pytest.raises(LoadError, match=r"part1\.csv: 2 rejected row\(s\)\n    line 2: dup"):
        project.load_raw()
    report = project.load_raw(on_bad_rows="quarantine")
    assert report.rejected == 2
    base_rows = len(base.splitlines()) - 1
    assert query(project, "select count(*) from raw.opportunity_stage_history") == [
        (base_rows + 1,)
    ]
    assert query(project, "select line_number from raw.rejected_rows order by 1") == [(2,), (4,)]
    # the same repeat in a part added later is refused against the loaded rows
    (export / "opportunity_stage_history.part2.csv").write_text(
        f"{header}\n{first}\n", encoding="utf-8"
    )
    report = project.load_raw(on_bad_rows="quarantine")
    assert report.actions["opportunity_stage_history"] == "append"
    assert "part2.csv: 1 rejected row(s)\n    line 2: duplicate key" in report.rejection_text()
    assert query(project, "select count(*) from raw.opportunity_stage_history") == [
        (base_rows + 1,)
    ]


def test_item7_paths_are_literal_never_globs(shop, tmp_path: Path) -> None:
    """item 7: a folder `crm[1]` and a part file `people.[1].csv` are read as
    named, never as DuckDB glob patterns."""
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    (export / "people.[1].csv").write_text(PEOPLE_HEADER + "b,Bracket,2,,,,\n")
    (export / "people.1.csv").write_text(PEOPLE_HEADER + "c,Plain,3,,,,\n")
    project.load_raw()
    assert query(project, "select person_id, name from raw.people order by 1") == [
        ("a", "Ann"),
        ("b", "Bracket"),
        ("c", "Plain"),
    ]
    odd = tmp_path / "crm[1]"
    shutil.copytree(export, odd)
    shutil.copytree(export, tmp_path / "crm1")
    (odd / "people.csv").write_text(PEOPLE_HEADER + "z,Odd,9,,,,\n")
    for part in odd.glob("people.*.csv"):
        part.unlink()
    project.load_raw(odd)
    assert query(project, "select person_id, name from raw.people") == [("z", "Odd")]


def test_item8_headers_match_ignoring_case_and_spaces(shop) -> None:
    """item 8: `Balance` or ` NAME ` is the contract's column, never a
    silently NULL one."""
    project, _, out = shop(" Person_ID ,NAME,Age,joined,seen_at,active,Balance\na,Ann,3,,,,12.5\n")
    report = project.load_raw()
    assert report.rejected == 0
    assert query(project, "select person_id, name, age, balance from raw.people") == [
        ("a", "Ann", 3, Decimal("12.5"))
    ]
    assert "extra column" not in out.getvalue()


def test_item8_two_headers_folding_to_one_name_is_an_error(shop) -> None:
    """item 8: `age` and `AGE` in one header name one column twice."""
    project, export, _ = shop("person_id,name,age,AGE\na,Ann,1,2\n")
    with pytest.raises(LoadError) as info:
        project.load_raw()
    assert f"{export / 'people.csv'}:1" in str(info.value)
    assert "age" in str(info.value) and "AGE" in str(info.value)


def test_item8_missing_optional_column_is_warned_and_summarised(shop) -> None:
    """item 8: an optional column absent from one part file while its sibling
    has it is a warning naming file and column, repeated at the end."""
    project, export, out = shop(PEOPLE_HEADER + "a,Ann,1,,,,5\n")
    (export / "people.2.csv").write_text("person_id,name,age,joined,seen_at,active\nb,Bo,2,,,\n")
    project.load_raw()
    text = out.getvalue()
    warning = f"{export / 'people.2.csv'}: optional column(s) balance absent"
    assert text.count(warning) == 2, text
    assert text.rindex(warning) > text.index("Loaded 3 row(s)")


def test_item8_load_warnings_are_repeated_after_the_build_summary(shop) -> None:
    """item 8: `kpi build` repeats the load's warnings after its summary."""
    project, export, out = shop("person_id,name\na,Ann\n")
    project.build()
    text = out.getvalue()
    warning = f"{export / 'people.csv'}: optional column(s) age, joined, seen_at, active, balance"
    assert text.count(warning) == 2, text
    assert text.rindex(warning) > text.index("Done in")


def test_item9_a_file_replaced_during_the_load_is_read_as_opened(
    shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """item 9: a file renamed over during the load: what is loaded, counted and
    hashed is the version that was opened, and the next load sees the new one."""
    import hashlib

    from runner import raw_load

    old = PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,2,,,,\n"
    new = PEOPLE_HEADER + "x,Xi,7,,,,\n"
    project, export, _ = shop(old)
    original = raw_load._has_duplicates

    def replace_then_check_keys(cur, plan, typed):  # type: ignore[no-untyped-def]
        if plan.contract.name == "people":
            (export / "people.tmp").write_text(new)
            os.replace(export / "people.tmp", export / "people.csv")
        return original(cur, plan, typed)

    monkeypatch.setattr(raw_load, "_has_duplicates", replace_then_check_keys)
    report = project.load_raw()
    monkeypatch.setattr(raw_load, "_has_duplicates", original)
    assert query(project, "select person_id from raw.people order by 1") == [("a",), ("b",)]
    assert report.rows == 3
    recorded = query(project, "select sha256 from _kpi.load_state where table_name = 'people'")
    assert recorded == [(hashlib.sha256(old.encode()).hexdigest(),)]
    assert project.load_raw().actions["people"] == "reload"
    assert query(project, "select person_id from raw.people") == [("x",)]


def test_item10_same_size_and_mtime_with_new_content_is_reloaded(shop) -> None:
    """item 10: `cp -p` / `rsync -t` keep size and mtime; the content decides."""
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    people = export / "people.csv"
    before = people.stat()
    people.write_text(PEOPLE_HEADER + "a,Ann,2,,,,\n")
    os.utime(people, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert people.stat().st_size == before.st_size
    assert project.load_raw().actions["people"] == "reload"
    assert query(project, "select age from raw.people") == [(2,)]


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The names of the export files whose bytes are read to hash them."""
    names: list[str] = []
    original = raw_files.ExportFile._read_contents

    def read_contents(self: raw_files.ExportFile) -> tuple[str, bool | None]:
        names.append(self.name)
        return original(self)

    monkeypatch.setattr(raw_files.ExportFile, "_read_contents", read_contents)
    return names


@pytest.fixture
def settled(monkeypatch) -> None:
    """Every file counts as settled when opened, as when it was written long
    before the load (the tests write a file and load it in the same tick),
    on a file system that keeps a ctime (whatever holds the test's folder)."""
    monkeypatch.setattr(raw_files, "SETTLED_NS", -(10**12))
    monkeypatch.setattr(raw_files, "filesystem_type", lambda device: "ext4")


def test_a_settled_unchanged_file_is_not_read_again(shop, settled, hashed) -> None:
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    assert sorted(hashed) == ["people.csv", "pets.csv"]  # hashed to be recorded
    stats = query(project, "select count(*) from _kpi.load_state where ctime_ns is not null")
    assert stats == [(2,)]
    hashed.clear()
    assert project.load_raw().actions == {"people": "skip", "pets": "skip"}
    assert hashed == []
    os.utime(export / "people.csv")  # a new mtime (and ctime): read to decide
    assert project.load_raw().actions["people"] == "skip"
    assert hashed == ["people.csv"]


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_a_settled_file_rewritten_with_the_same_size_and_mtime_is_reloaded(
    shop, settled, how
) -> None:
    """`cp -p` / `rsync -t` keep size and mtime; the ctime (and for a rename,
    the inode) moves, so the bytes are read and decide."""
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    people = export / "people.csv"
    before = people.stat()
    target = people if how == "in place" else export / "people.tmp"
    target.write_text(PEOPLE_HEADER + "a,Ann,2,,,,\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    if how == "renamed over":
        os.replace(target, people)
    assert people.stat().st_size == before.st_size
    assert people.stat().st_mtime_ns == before.st_mtime_ns
    assert project.load_raw().actions["people"] == "reload"
    assert query(project, "select age from raw.people") == [(2,)]


def test_on_a_file_system_without_its_own_ctime_every_file_is_read(
    shop, settled, hashed, monkeypatch
) -> None:
    """FAT and exFAT report the mtime as the ctime, so `cp -p` of new content
    of the same size leaves the whole stat as it was: the bytes must decide."""
    monkeypatch.setattr(raw_files, "filesystem_type", lambda device: "vfat")
    project, _, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    assert query(project, "select count(ctime_ns) from _kpi.load_state") == [(0,)]
    hashed.clear()
    assert project.load_raw().actions["people"] == "skip"
    assert sorted(hashed) == ["people.csv", "pets.csv"]


def test_mountinfo_gives_each_device_its_file_system_type() -> None:
    mountinfo = (
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "30 27 8:17 / /media/usb rw,relatime - vfat /dev/sdb1 rw,fmask=0022\n"
        "31 27 0:45 / /mnt/share rw,nosuid - fuse.sshfs me@host:/exports rw\n"
        "32 27 254:0 /srv /srv rw,relatime - ext4 /dev/vda rw\n"
        "33 27 7:3 / /a rw shared:5 - ext4 /dev/loop3 rw\n"
        "34 27 7:3 / /b rw - xfs /dev/loop3 rw\n"
        "not a mount line\n"
    )
    assert raw_files.parse_mountinfo(mountinfo) == {
        os.makedev(254, 0): "ext4",  # mounted twice, one type
        os.makedev(8, 17): "vfat",
        os.makedev(0, 45): "fuse.sshfs",
        os.makedev(7, 3): "?",  # two types for one device: not trusted
    }
    assert not {"vfat", "exfat", "fuse.sshfs", "cifs", "nfs", "?"} & raw_files.CTIME_FILESYSTEMS


def test_a_file_changed_just_before_its_load_is_read_until_it_has_settled(
    shop, hashed, monkeypatch
) -> None:
    project, _, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()  # opened within SETTLED_NS of being written: no stat recorded
    assert query(project, "select count(ctime_ns) from _kpi.load_state") == [(0,)]
    hashed.clear()
    assert project.load_raw().actions["people"] == "skip"
    assert sorted(hashed) == ["people.csv", "pets.csv"]
    assert query(project, "select count(ctime_ns) from _kpi.load_state") == [(0,)]
    # later, settled: read once more, found unchanged, and its stat recorded
    monkeypatch.setattr(raw_files, "SETTLED_NS", -(10**12))
    monkeypatch.setattr(raw_files, "filesystem_type", lambda device: "ext4")
    hashed.clear()
    assert project.load_raw().actions["people"] == "skip"
    assert sorted(hashed) == ["people.csv", "pets.csv"]
    assert query(project, "select count(ctime_ns) from _kpi.load_state") == [(2,)]
    hashed.clear()
    assert project.load_raw().actions["people"] == "skip"
    assert hashed == []


def test_item11_parquet_values_obey_the_csv_rules(shop) -> None:
    """item 11: a DOUBLE 2.6 in an integer column and money with 6 decimals are
    rejected (with file, row and reason), never rounded (and item 8: a Parquet
    column name in another case is the contract's column)."""
    project, export, _ = shop(None)
    con = duckdb.connect()
    con.execute(
        f"""copy (select * from (values
                ('a', 'Ann', 2.6::double, 1.5::decimal(18,6), 1.5::double),
                ('b', 'Bo', 3.0::double, 1.123456::decimal(18,6), 2.0::double),
                ('c', 'Cy', 4.0::double, 7.25::decimal(18,6), 'nan'::double))
                as t(Person_ID, name, age, balance, not_in_contract))
            to '{export / "people.parquet"}' (format parquet)"""
    )
    report = project.load_raw(on_bad_rows="quarantine")
    text = report.rejection_text()
    assert "row 1: column age: '2.6' is not an integer" in text
    assert "row 2: column balance: '1.123456' is not money" in text
    assert query(project, "select person_id, age, balance from raw.people") == [
        ("c", 4, Decimal("7.25"))
    ]


def test_item12_first_row_in_file_order_is_the_same_in_every_build(shop) -> None:
    """item 12: a new part that sorts before a loaded one and repeats its key:
    the incremental load keeps the same row as a fresh load (files by name)."""
    project, export, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\n")
    project.load_raw()
    (export / "people.b.csv").write_text(PEOPLE_HEADER + "k,From b,2,,,,\n")
    project.load_raw()
    (export / "people.a.csv").write_text(PEOPLE_HEADER + "k,From a,3,,,,\n")
    project.load_raw(on_bad_rows="quarantine")
    incremental = query(project, "select person_id, name from raw.people order by 1")
    rejected = query(project, "select file_name, line_number from raw.rejected_rows")
    project.load_raw(on_bad_rows="quarantine", full_refresh=True)
    assert query(project, "select person_id, name from raw.people order by 1") == incremental
    assert incremental == [("a", "Ann"), ("k", "From a")]
    assert query(project, "select file_name, line_number from raw.rejected_rows") == rejected


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("a,A,1,9999-12-31,,,", "column joined: '9999-12-31' is outside"),
        ("a,A,1,1899-12-31,,,", "column joined: '1899-12-31' is outside"),
        ("a,A,1,,0001-01-01 00:00:00,,", "column seen_at: '0001-01-01 00:00:00' is outside"),
        ("a,A,1,,2100-01-01T00:00:00Z,,", "column seen_at: '2100-01-01T00:00:00Z' is outside"),
    ],
)
def test_item15_dates_outside_the_bounds_are_rejected(shop, row: str, reason: str) -> None:
    """item 15: one absurd date may not stretch a build over centuries."""
    project, _, _ = shop(PEOPLE_HEADER + "z,Zed,1,2099-12-31,1900-01-01,,\n" + row + "\n")
    with pytest.raises(LoadError) as info:
        project.load_raw()
    text = str(info.value)
    assert f"line 3: {reason} the supported range [1900-01-01, 2100-01-01)" in text
    assert "line 2" not in text


def test_item15_parquet_dates_are_bounded_too(shop) -> None:
    """item 15: a typed Parquet date out of range is rejected like a CSV one."""
    project, export, _ = shop(None)
    duckdb.connect().execute(
        f"""copy (select 'a' as person_id, 'Ann' as name, date '9999-12-31' as joined,
                  timestamp '2026-01-01' as seen_at)
            to '{export / "people.parquet"}' (format parquet)"""
    )
    with pytest.raises(LoadError, match="row 1: column joined: '9999-12-31' is outside"):
        project.load_raw()


def test_item16_repeated_keys_and_refused_lines_keep_their_raw_values(shop) -> None:
    """item 16: quarantined repeats and lines the CSV reader refused keep raw_row."""
    project, _, _ = shop(PEOPLE_HEADER + "a,Ann,1,,,,\na,Again,2,,,,\nb,Short\n")
    project.load_raw(on_bad_rows="quarantine")
    kept = dict(query(project, "select line_number, raw_row from raw.rejected_rows"))
    assert set(kept) == {3, 4}
    assert '"name":"Again"' in kept[3]
    assert "Short" in kept[4]


def test_item17_cr_only_line_ends_load(shop) -> None:
    """item 17: a file with old Mac line ends (CR only) loads as lines."""
    project, _, _ = shop((PEOPLE_HEADER + "a,Ann,1,,,,\nb,Bo,x,,,,\n").replace("\n", "\r"))
    report = project.load_raw(on_bad_rows="quarantine")
    assert query(project, "select person_id, name, age from raw.people") == [("a", "Ann", 1)]
    assert "line 3: column age: 'x' is not an integer" in report.rejection_text()


def test_timestamp_text_parses_as_the_timestamptz_reading_would() -> None:
    """Text without a numeric offset is cast straight to TIMESTAMP (faster);
    for every text the timestamp pattern accepts, the value (or its failure
    to parse, which rejects the row) is the one reading it as TIMESTAMPTZ in
    the warehouse's UTC session gives."""
    from itertools import product

    from runner.raw_contract import _PATTERNS, _timestamp_sql

    days = ["2025-01-01", "2024-02-29", "2025-02-29", "1899-12-31", "2025-13-01", "9999-12-31"]
    times = ["10:00", "24:00", "23:59:59", "23:59:60", "24:00:00", "12:34:56.123", "25:00"]
    times += ["12:34:56.123456789", "10:61"]
    offsets = ["", "Z", "z", "+00", "-00", "+02", "-0230", "+02:30", "+14", "+99"]
    texts = days + [d + s + t + o for d, s, t, o in product(days, "T ", times, offsets)]
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create table texts (x varchar)")
    con.executemany("insert into texts values (?)", [[t] for t in texts])
    pattern = _PATTERNS["timestamp"].replace("'", "''")
    rows = con.execute(
        f"select x, {_timestamp_sql('x')}, cast(try_cast(x as timestamptz) as timestamp) "
        f"from texts where regexp_full_match(x, '{pattern}')"
    ).fetchall()
    assert len(rows) == len(texts)
    assert [r for r in rows if r[1] != r[2]] == []
    offset = {x: new for x, new, _ in rows}
    assert offset["2025-01-01T10:00+02:30"] == datetime(2025, 1, 1, 7, 30)
    assert offset["2025-01-01T12:34:56.123Z"] == datetime(2025, 1, 1, 12, 34, 56, 123000)


def _key_repeats(con: duckdb.DuckDBPyConnection, action: str, typed: str) -> bool:
    """`_has_duplicates` for the rows of `typed` in table `raw.t`, keyed (k, n)."""
    from runner.engines.duckdb import DuckDBAdapter
    from runner.nodes import Relation
    from runner.raw_contract import ColumnContract, TableContract
    from runner.raw_files import TablePlan
    from runner.raw_load import _has_duplicates

    columns = (ColumnContract("k", "id", False), ColumnContract("n", "integer", False))
    contract = TableContract("t", Relation("raw", "t"), columns, primary_key=("k", "n"))
    return _has_duplicates(DuckDBAdapter(con), TablePlan(contract, [], action), typed)


@pytest.mark.parametrize(
    ("rows", "repeats"),
    [
        ("('a', 1), ('b', 1), ('a', 2)", False),
        ("('a', 1), ('b', 1), ('a', 1)", True),
        ("(null, 1), ('b', 1), (null, 1)", True),  # NULL keys are one key, as grouped
        ("(null, 1), (null, null), ('b', null)", False),
    ],
)
def test_repeated_keys_are_found_through_their_hash_as_by_the_keys(
    rows: str, repeats: bool
) -> None:
    """The key check groups the keys' hash first, and the keys themselves only
    when a hash repeats: the verdict is the keys'."""
    typed = f"select * from (values {rows}) v(k, n)"
    with duckdb.connect() as con:
        assert _key_repeats(con, "reload", typed) is repeats


@pytest.mark.parametrize(
    ("loaded", "appended", "repeats"),
    [
        ("('a', 1), ('b', 2)", "('c', 1), ('d', 1)", False),
        ("('a', 1), ('b', 2)", "('c', 1), ('b', 2)", True),
        ("('a', 1), (null, 2)", "('c', 1), (null, 2)", True),  # NULL matches NULL, as grouped
        ("('a', 1), (null, 2)", "('c', 1), (null, 3)", False),
        ("('a', 1), ('b', null)", "(null, null), ('b', 1)", False),
    ],
)
def test_an_appended_key_that_repeats_a_loaded_one_is_found_null_or_not(
    loaded: str, appended: str, repeats: bool
) -> None:
    """Appending, the new keys are joined with the loaded ones by `=` (which
    lets DuckDB skip row groups) and, for a key with a NULL, by `is not
    distinct from`: the verdict is that of `is not distinct from` alone."""
    with duckdb.connect() as con:
        con.execute("create schema raw")
        con.execute(f"create table raw.t as select * from (values {loaded}) v(k, n)")
        typed = f"select * from (values {appended}) v(k, n)"
        assert _key_repeats(con, "append", typed) is repeats


def test_a_boolean_read_without_lower_casing_keeps_the_case_insensitive_verdict() -> None:
    """The usual spellings of a flag (0, 1, false, true) are decided without
    `lower()`; every text gets the value and verdict of the case-insensitive
    reading."""
    from itertools import product

    from runner.raw_contract import ColumnContract, parse_value_sql

    words = ["0", "1", "true", "false", "t", "f", "yes", "no", "2", "", " 1", "1 ", "y", "n"]
    texts = [*words, *("".join(p) for w in words for p in product(*((c, c.upper()) for c in w)))]
    typed, invalid = parse_value_sql(ColumnContract("x", "bool", required=False), "x", "VARCHAR")
    assert typed.startswith("case when x in ('0', '1', 'false', 'true') then")
    con = duckdb.connect()
    con.execute("create table texts (x varchar)")
    con.executemany("insert into texts values (?)", [[t] for t in [*texts, None]])
    rows = con.execute(
        f"select x, {typed}, {invalid}, lower(x) in ('true', '1', 't', 'yes'), "
        "lower(x) not in ('true', 'false', '1', '0', 't', 'f', 'yes', 'no') from texts"
    ).fetchall()
    assert len(rows) == len(texts) + 1
    assert [r for r in rows if (r[1], r[2]) != (r[3], r[4])] == []
    assert {r[0].lower() for r in rows if r[1]} == {"1", "true", "t", "yes"}


@pytest.mark.parametrize("kind", ["date", "timestamp"])
def test_a_value_written_as_duckdb_writes_it_skips_the_pattern_with_the_same_verdict(
    kind: str,
) -> None:
    """The check of a date or timestamp skips the regular expression for text
    equal to the typed value written back (`2025-01-02 08:30:00`, Salesforce's
    `2025-01-02T08:30:00.000Z`): for every text, the verdict is the pattern's."""
    from itertools import product

    from runner.raw_contract import ColumnContract, parse_value_sql

    days = ["2025-01-02", "2025-1-02", "2025-01-2", " 2025-01-02", "0900-01-02", "10000-01-02"]
    days += ["2025-02-30", "+2025-01-02", "2025-01-02 ", "20250102"]
    times = ["", " 08:30:00", "T08:30:00", "T08:30:00.000Z", "T08:30:00.123Z", "T08:30:00.000z"]
    times += [" 08:30:00.000Z", "T08:30:00.0001Z", "T08:30:00.12Z", " 8:30:00", "T08:30:00Z"]
    times += [" 08:30:00.5", "T08:30:00.000+02:00", " 24:00:00", "T08:30:00.000 Z"]
    texts = [d + t for d, t in product(days, times)]
    column = ColumnContract("x", kind, required=False)
    typed, fast = parse_value_sql(column, "x", "VARCHAR", typed_ref="typed")
    _, pattern_only = parse_value_sql(column, "x", "VARCHAR")
    assert "regexp_full_match" in fast and fast != pattern_only
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create table texts (x varchar)")
    con.executemany("insert into texts values (?)", [[t] for t in texts])
    rows = con.execute(
        f"select x, {fast}, {pattern_only} from (select x, {typed} as typed from texts)"
    ).fetchall()
    assert len(rows) == len(texts)
    assert [r for r in rows if r[1] is not r[2]] == []
    valid = {x for x, invalid, _ in rows if not invalid}
    assert {"2025-01-02 08:30:00", "2025-01-02T08:30:00.000Z"} <= valid or kind == "date"
    assert "2025-1-02" not in valid and "2025-01-02 " not in valid


def test_the_files_of_an_export_are_hashed_together_each_once(tmp_path: Path) -> None:
    import hashlib

    from runner.raw_files import close_export_files, hash_files, open_export_file

    contents = {f"t{i}.csv": (f"id\n{i}\n" * (i + 1) * 1000).encode() for i in range(5)}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    files = [open_export_file(name[:-4], tmp_path / name) for name in sorted(contents)]
    try:
        hash_files(files)
        for file in files:
            assert file.__dict__["_hashed"][0] == hashlib.sha256(contents[file.name]).hexdigest()
    finally:
        close_export_files({"all": files})


def test_two_files_are_hashed_at_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hashing thread waits inside its file's read until the other one
    is inside its own: a lock shared by the files (as
    `functools.cached_property` takes before Python 3.12) breaks the barrier."""
    import hashlib
    import threading

    from runner import raw_files

    both_reading = threading.Barrier(2, timeout=10)
    plain_read = raw_files.ExportFile._read_contents

    def read_beside_another(file: raw_files.ExportFile) -> tuple[str, bool | None]:
        both_reading.wait()
        return plain_read(file)

    monkeypatch.setattr(raw_files.ExportFile, "_read_contents", read_beside_another)
    monkeypatch.setattr(raw_files.os, "cpu_count", lambda: 2)
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("id\n1\n")
    files = [raw_files.open_export_file(n[0], tmp_path / n) for n in ("a.csv", "b.csv")]
    try:
        raw_files.hash_files(files)  # BrokenBarrierError when one waits for the other
        assert [f.sha256 for f in files] == [hashlib.sha256(b"id\n1\n").hexdigest()] * 2
    finally:
        raw_files.close_export_files({"all": files})
