"""The Spark target's settings and its session.

`[tool.kpi.targets.spark]` in `pyproject.toml`:

    [tool.kpi.targets.spark]
    master = "local[*]"              # or spark://host:7077, yarn, ...
    warehouse_dir = "spark-warehouse" # where the tables' files go (relative: to the project)
    file_format = "parquet"           # parquet | delta | iceberg
    fast_start = false                # JVM flags for a short-lived local session
    [tool.kpi.targets.spark.conf]     # any Spark setting
    "spark.driver.memory" = "4g"

Every session runs in UTC with TIMESTAMP_NTZ as its timestamp type: the
models' timestamps are wall-clock UTC, and a session time zone with daylight
saving would move stage durations across its changes. pyspark is imported
here only, when a Spark command runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ProjectError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from runner.settings import Settings

FILE_FORMATS = ("parquet", "delta", "iceberg")
FAST_START_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -Xss4m"
LOG4J_FILE = Path(__file__).parent / "assets" / "spark-log4j2.properties"
KEYS = ("master", "warehouse_dir", "file_format", "fast_start", "conf", "app_name")

# What every session needs, whatever the user's conf says.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}

# Extensions and catalogs for the table formats (their jars come from the
# user's Spark installation or `spark.jars.packages` in conf).
FORMAT_CONF: Mapping[str, Mapping[str, str]] = {
    "delta": {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    },
    "iceberg": {
        "spark.sql.extensions": (
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        ),
        "spark.sql.catalog.spark_catalog": "org.apache.iceberg.spark.SparkSessionCatalog",
        "spark.sql.catalog.spark_catalog.type": "hadoop",
    },
}


@dataclass(frozen=True)
class SparkTarget:
    """The Spark target of a project, from `[tool.kpi.targets.spark]`."""

    warehouse_dir: Path
    master: str = "local[*]"
    file_format: str = "parquet"
    fast_start: bool = False
    app_name: str = "kpi"
    conf: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkTarget:
        table = dict(settings.spark)
        pyproject = settings.project_dir / "pyproject.toml"
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise ProjectError(
                f"[tool.kpi.targets.spark] has no key {unknown[0]!r}; the keys are "
                f"{', '.join(KEYS)}.",
                path=pyproject,
                hint="Spark settings go under [tool.kpi.targets.spark.conf].",
            )
        file_format = str(table.get("file_format", "parquet")).lower()
        if file_format not in FILE_FORMATS:
            raise ProjectError(
                f"[tool.kpi.targets.spark] file_format must be one of "
                f"{', '.join(FILE_FORMATS)}, not {file_format!r}.",
                path=pyproject,
            )
        default_dir = settings.warehouse.with_name(settings.warehouse.stem + "-spark")
        warehouse_dir = Path(str(table.get("warehouse_dir") or default_dir))
        if not warehouse_dir.is_absolute():
            warehouse_dir = settings.project_dir / warehouse_dir
        conf = table.get("conf", {})
        if not isinstance(conf, Mapping):
            raise ProjectError(
                "[tool.kpi.targets.spark] conf must be a table of Spark settings.",
                path=pyproject,
            )
        return cls(
            warehouse_dir=warehouse_dir,
            master=str(table.get("master", "local[*]")),
            file_format=file_format,
            fast_start=bool(table.get("fast_start", False)),
            app_name=str(table.get("app_name", "kpi")),
            conf={str(k): str(v) for k, v in conf.items()},
        )

    def spark_conf(self) -> dict[str, str]:
        """Every setting the session starts with."""
        conf: dict[str, str] = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": str(_local_cores(self.master)),
            "spark.sql.adaptive.enabled": "true",
            "spark.sql.warehouse.dir": str(self.warehouse_dir / "_catalog"),
            **FORMAT_CONF.get(self.file_format, {}),
        }
        java_options = f"-Dlog4j2.configurationFile={LOG4J_FILE.as_uri()}"
        if self.fast_start:
            java_options += " " + FAST_START_JVM
        conf["spark.driver.extraJavaOptions"] = java_options
        conf.update(self.conf)
        conf.update(REQUIRED_CONF)
        return conf


def _local_cores(master: str) -> int:
    """Shuffle partitions for a local master: its cores (Spark's 200 suit a cluster)."""
    inside = master.removeprefix("local").strip("[]")
    if inside.isdigit():
        return max(1, int(inside))
    if master.startswith("local"):
        return os.cpu_count() or 2
    return 200


def get_session(target: SparkTarget) -> SparkSession:
    """The process's Spark session, started with `target`'s settings if none runs.

    A session that is already running (a notebook's, or the one a test suite
    shares) is reused; the settings that matter to the results are set on it.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ProjectError(
            "the Spark target needs pyspark, which is not installed.",
            hint="pip install 'sales-kpi-warehouse[spark]' (or -e '.[spark]' in a checkout); "
            "Spark also needs Java 17 or newer.",
        ) from exc
    session = SparkSession.getActiveSession()
    if session is None:
        builder: Any = SparkSession.builder.master(target.master).appName(target.app_name)
        for key, value in target.spark_conf().items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise ProjectError(
                f"Spark did not start ({str(exc).strip().splitlines()[0]}).",
                hint="Spark needs Java 17 or newer on PATH (or JAVA_HOME); check "
                "[tool.kpi.targets.spark] master and conf.",
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
    _quiet_python_loggers()
    for key, value in REQUIRED_CONF.items():
        session.conf.set(key, value)
    return session


def _quiet_python_loggers() -> None:
    """pyspark logs every failed query as JSON on stderr; the runner reports
    the failure itself, once, in its own words."""
    import logging

    from pyspark.logger import PySparkLogger

    for logger_name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(logger_name).setLevel(logging.CRITICAL)
