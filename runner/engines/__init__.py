"""Engine adapters: the one seam between the runner and a warehouse engine
(`base.py`: what every engine offers; `duckdb.py`: DuckDB). The DuckDB
module is imported where a warehouse is opened, so that importing this
package needs no engine."""

from runner.engines.base import EngineAdapter, RelationKind, Transaction, strip_statement

__all__ = ["EngineAdapter", "RelationKind", "Transaction", "strip_statement"]
