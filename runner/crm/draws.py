"""Hash-based random draws and the SQL helpers every generator query shares.

The big tables use no generator state. Every draw is a pure function of
(seed, purpose, entity key): `u(purpose, key)` is DuckDB's 64-bit `hash()` of
those values cut to 53 bits and scaled to [0, 1), and `gauss` turns two such
fractions into a normal draw (Box-Muller). A row's values do not depend on the
order or the thread in which rows are computed, so the tables are built by
set-based SQL over `range()` and come out the same on every run. The small
user table uses `random.Random(seed)`. Files are sorted by their key before
writing, so the same arguments give byte-identical files (with the same DuckDB
version: `hash()` is not promised to stay the same across versions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

import duckdb

from runner.nodes import quote_literal

FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "David", "Elif", "Farah", "Gustavo", "Hannah", "Ingrid", "James",
    "Kenji", "Lena", "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa", "Samuel", "Tomás",
    "Uma", "Victor", "Wei", "Ximena", "Yusuf", "Zoë", "Aisha", "Björn", "Carmen", "Dmitri",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Bianchi", "Chen", "Dubois", "Eriksen", "Fernández", "García", "Hoffmann",
    "Ito", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yılmaz", "Zimmermann",
    "Novák", "Silva", "Okafor", "Larsen",
)  # fmt: skip
ACCOUNT_WORDS = (
    "Acme", "Blue Harbor", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Helios",
    "Iron Bridge", "Juniper", "Keystone", "Lumen", "Meridian", "Northwind", "Orion", "Pinnacle",
    "Quantum", "Redwood", "Summit", "Tidewater", "Vertex", "Willow", "Zenith", "Nordlicht",
    "Café Lumière", "Sakura", "Andes", '"Big Sky"', "Brightline", "Saint-Étienne",
)  # fmt: skip
ACCOUNT_KINDS = (
    " Labs", " Systems", " Group", " Logistics", " Health", " Foods", " Energy", " Media",
    " Bank", " Retail", " Software", " Partners", " Manufacturing", " Analytics", " Holdings",
)  # fmt: skip
ACCOUNT_LEGAL = (", Inc.", " GmbH", " Ltd", " LLC", " S.A.", " AG", " BV", "", "", "")
INDUSTRIES = (
    "Software", "Manufacturing", "Retail", "Healthcare", "Financial Services", "Logistics",
    "Education", "Media", "Energy", "Public Sector",
)  # fmt: skip
PRODUCTS = ("Platform", "Analytics", "Seats", "Support", "Integration", "Data Add-on")
OTHER_ACTIVITY_TYPES = ("linkedin", "LinkedIn", "sms", "note", "webinar")

# Creation intensity grows linearly by this fraction over the period.
GROWTH = 0.35


def row_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return int(row[0]) if row else 0


def sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


def sql_ts(value: datetime) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"


def sql_date(value: date) -> str:
    return f"DATE '{value:%Y-%m-%d}'"


def weighted_case(draw: str, choices: Sequence[tuple[str | None, float]]) -> str:
    """A CASE picking a value with the given weights from a uniform draw."""
    total = sum(weight for _, weight in choices)
    parts, cumulative = [], 0.0
    for value, weight in choices[:-1]:
        cumulative += weight / total
        parts.append(f"WHEN {draw} < {cumulative:.6f} THEN {literal(value)}")
    return f"CASE {' '.join(parts)} ELSE {literal(choices[-1][0])} END"


def literal(value: str | None) -> str:
    return "NULL" if value is None else quote_literal(value)


def create_macros(con: duckdb.DuckDBPyConnection, seed: int, salt: str) -> None:
    """Hash-based random draws and the formatting helpers shared by all queries."""
    base_salt = quote_literal(f"seed={seed}")
    salt = quote_literal(salt)
    others = sql_list(OTHER_ACTIVITY_TYPES)
    con.execute(f"""
        CREATE OR REPLACE MACRO u(purpose, k) AS
            (hash(k, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO u2(purpose, k, j) AS
            (hash(k, j, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO u3(purpose, k, j, i) AS
            (hash(k, j, i, purpose, {salt}) >> 11)::DOUBLE / 9007199254740992.0;
        CREATE OR REPLACE MACRO gauss(purpose, k) AS sqrt(-2 * ln(1 - u(purpose || '/r', k)))
            * cos(2 * pi() * u(purpose || '/a', k));
        CREATE OR REPLACE MACRO pick(items, purpose, k) AS
            items[1 + floor(u(purpose, k) * len(items))::BIGINT];
        CREATE OR REPLACE MACRO secs(x) AS to_seconds(floor(x)::BIGINT);
        CREATE OR REPLACE MACRO grow(x) AS
            (sqrt(1 + 2 * {GROWTH} * (1 + {GROWTH} / 2) * x) - 1) / {GROWTH};
        CREATE OR REPLACE MACRO fmt_id(prefix, n, width) AS
            prefix || lpad(n::VARCHAR, greatest(width, length(n::VARCHAR))::INTEGER, '0');
        CREATE OR REPLACE MACRO id_number(id) AS regexp_extract(id, '([0-9]+)$', 1)::BIGINT;
        CREATE OR REPLACE MACRO ts_text(ts, key) AS CASE
            WHEN hash(key, 'offset', {base_salt}) % 100 < 2
                THEN strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
            WHEN hash(key, 'offset', {base_salt}) % 100 < 3
                THEN strftime(ts + INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%S+01:00')
            ELSE strftime(ts, '%Y-%m-%d %H:%M:%S') END;
        CREATE OR REPLACE MACRO account_name(k) AS
            pick({sql_list(ACCOUNT_WORDS)}, 'account-word', k)
            || pick({sql_list(ACCOUNT_KINDS)}, 'account-kind', k)
            || pick({sql_list(ACCOUNT_LEGAL)}, 'account-legal', k);
        CREATE OR REPLACE MACRO industry(k) AS CASE WHEN u('industry-null', k) < 0.05 THEN NULL
            ELSE pick({sql_list(INDUSTRIES)}, 'industry', k) END;
        CREATE OR REPLACE MACRO activity_type_text(kind, style, other) AS CASE
            WHEN kind = 'other' THEN {others}[1 + floor(other * len({others}))::INTEGER]
            WHEN style < 0.72 THEN kind
            WHEN style < 0.84 THEN upper(kind[1]) || kind[2:]
            WHEN style < 0.90 THEN ' ' || upper(kind)
            WHEN style < 0.95 THEN kind || ' '
            WHEN style < 0.98 THEN upper(kind)
            ELSE chr(9) || kind END;
    """)


def activity_kind(draw: str, source: str) -> str:
    """The canonical activity type of a lead, deal or account touch."""
    weights = {
        "lead": [("call", 45), ("email", 45), ("meeting", 4), ("other", 6)],
        "deal": [("call", 28), ("email", 32), ("meeting", 20), ("demo", 16), ("other", 4)],
        "account": [("meeting", 60), ("call", 30), ("email", 10)],
    }[source]
    return weighted_case(draw, [(kind, float(weight)) for kind, weight in weights])
