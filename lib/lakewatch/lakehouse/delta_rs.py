"""The lakehouse's tables without Spark, through delta-rs: for Airflow tasks, the UI, and the Spark jobs' commits of
a few rows (`lakehouse.writes.driver_rows`), on any storage.

A local lakehouse is read as folders; an `s3a://` lakehouse (Spark's scheme) as `s3://` with the endpoint
and path-style setting of the profile's Spark options and the credentials of the environment. A table that
exists but cannot be read is an error, never an empty result: a gate that reads nothing would be green.
No pyspark here: DAG files and the Airflow plugin import this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakewatch.config import Settings
from lakewatch.errors import LakewatchError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from deltalake import DeltaTable

log = logging.getLogger("lakewatch")
CHECKPOINT_INTERVAL = 10  # Delta's default delta.checkpointInterval


def table_uri(settings: Settings, name: str) -> str:
    """The URI delta-rs opens for a lakehouse table (s3a:// becomes s3://)."""
    root = settings.lakehouse.rstrip("/")
    if root.startswith("s3a://"):
        root = "s3://" + root[len("s3a://"):]
    return f"{root}/{name}"


def storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs storage options for the lakehouse: none locally; endpoint, region, credentials for S3."""
    if "://" not in settings.lakehouse or settings.lakehouse.startswith("file://"):
        return {}
    opts: dict[str, str] = {}
    endpoint = settings.spark.options.get("spark.hadoop.fs.s3a.endpoint") or os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    if settings.spark.options.get("spark.hadoop.fs.s3a.path.style.access", "").lower() == "true":
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        if os.environ.get(key):
            opts[key] = os.environ[key]
    opts.setdefault("AWS_REGION", "us-east-1")
    return opts


def open_table(settings: Settings, name: str) -> "DeltaTable | None":
    """The table, or None when it was never created; any other failure is a LakewatchError that says so."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(settings, name)
    if "://" not in uri and not (Path(uri) / "_delta_log").is_dir():
        return None
    try:
        return DeltaTable(uri, storage_options=storage_options(settings) or None)
    except TableNotFoundError:
        return None
    except Exception as exc:
        raise LakewatchError(f"cannot read the {name} table at {uri}: {type(exc).__name__}: {exc}") from exc


def read_pandas(settings: Settings, name: str, filters: list[tuple[str, str, Any]] | None = None,
                columns: list[str] | None = None, required: bool = True) -> "pd.DataFrame":
    """A table (or the rows matching filters) as pandas; a missing table is an error when required."""
    import pandas as pd

    table = open_table(settings, name)
    if table is None:
        if required:
            raise LakewatchError(f"the {name} table does not exist at {table_uri(settings, name)}")
        return pd.DataFrame(columns=columns or [])
    try:
        try:
            return table.to_pandas(filters=filters or None, columns=columns)
        except NotImplementedError:
            # files a delta-rs MERGE wrote hold string_view columns, which pyarrow cannot compare with the
            # filter's strings: filter after reading (only small tables, the registry's, are merged that way)
            if not filters:
                raise
            return _filtered(table.to_pandas(columns=columns and sorted({*columns, *(f[0] for f in filters)})),
                             filters)[columns or slice(None)]
    except Exception as exc:
        raise LakewatchError(f"cannot read the {name} table at {table_uri(settings, name)}: {exc}") from exc


def head(settings: Settings, name: str, files: list[tuple[str, str, Any]], columns: list[str],
         rows: int) -> "pa.Table | None":
    """The first rows of the files matching the partition filters `files` (some columns), or None when the table
    was never created: a few rows without reading the rest."""
    table = open_table(settings, name)
    if table is None:
        return None
    try:
        return table.to_pyarrow_dataset(file_pruning_predicate=files).head(rows, columns=columns)
    except Exception as exc:
        raise LakewatchError(f"cannot read the {name} table at {table_uri(settings, name)}: {exc}") from exc


def _filtered(pdf: "pd.DataFrame", filters: list[tuple[str, str, Any]]) -> "pd.DataFrame":
    """The rows of pdf that pass every (column, op, value) filter, as DeltaTable.to_pandas reads them."""
    keep = None
    for column, op, value in filters:
        col = pdf[column]
        match = {"=": lambda: col == value, "!=": lambda: col != value, "in": lambda: col.isin(value),
                 "not in": lambda: ~col.isin(value), "<": lambda: col < value, "<=": lambda: col <= value,
                 ">": lambda: col > value, ">=": lambda: col >= value}[op]()
        keep = match if keep is None else keep & match
    return pdf[keep].reset_index(drop=True)


def append_rows(settings: Settings, name: str, rows: list[dict[str, Any]]) -> None:
    """Append rows to an existing table with its own schema (columns not given are null)."""
    import pyarrow as pa

    table = _existing(settings, name)
    schema = _arrow_schema(table)
    _commit(table, name, pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema))


def write(settings: Settings, name: str, data: "pa.Table", predicate: str | None = None,
          user_metadata: str | None = None) -> int:
    """One commit to an existing table: data appended, or with predicate, the rows matching it replaced by data
    (Spark's replaceWhere: the predicate in the SQL that Spark and DataFusion both read, `DATE'...'` included).
    Columns are matched to the table's by name (one data lacks is null); user_metadata is the commit's
    `userMetadata`, as Spark's writer option sets it. A checkpoint follows every `CHECKPOINT_INTERVAL`th
    version, as Spark's own commits make them, so that readers never replay a long log. Returns the rows written.

    Why: a commit of a few rows costs Spark a job, a constraint check and a history read (1.5-2 s on two cores);
    here it is a file and a log entry (milliseconds). Big writes stay Spark's (`lakehouse.writes`).
    """
    return _commit(_existing(settings, name), name, data, predicate, user_metadata)


def _commit(table: "DeltaTable", name: str, data: "pa.Table", predicate: str | None = None,
            user_metadata: str | None = None) -> int:
    from deltalake import CommitProperties, write_deltalake

    rows = _conformed(data, _arrow_schema(table))
    props = CommitProperties(custom_metadata={"userMetadata": user_metadata}) if user_metadata else None
    write_deltalake(table, rows, mode="overwrite" if predicate else "append", predicate=predicate,
                    commit_properties=props)
    table.update_incremental()
    if table.version() % CHECKPOINT_INTERVAL == 0:
        try:
            table.create_checkpoint()
        except Exception as exc:  # the commit is made: a missing checkpoint only slows readers down
            log.warning("table %s: no checkpoint at version %d: %s", name, table.version(), exc)
    return rows.num_rows


def _existing(settings: Settings, name: str) -> "DeltaTable":
    table = open_table(settings, name)
    if table is None:
        raise LakewatchError(f"the {name} table does not exist at {table_uri(settings, name)}")
    return table


def _arrow_schema(table: "DeltaTable") -> "pa.Schema":
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


def _conformed(data: "pa.Table", schema: "pa.Schema") -> "pa.Table":
    """data's columns in the table's order and types (timestamps to the table's UTC), absent ones null."""
    import pyarrow as pa

    unknown = sorted(set(data.column_names) - set(schema.names))
    if unknown:
        raise ValueError(f"columns {unknown} are not in the table (its columns: {schema.names})")
    return pa.table([data.column(f.name).cast(f.type) if f.name in data.column_names
                     else pa.nulls(data.num_rows, f.type) for f in schema], schema=schema)


def create_table(settings: Settings, name: str, schema: "pa.Schema",
                 partition_by: tuple[str, ...] = ()) -> "DeltaTable":
    """Create a table that no job has written yet (a concurrent creation by someone else is fine)."""
    from deltalake import DeltaTable

    try:
        return DeltaTable.create(table_uri(settings, name), schema, mode="ignore",
                                 partition_by=list(partition_by) or None,
                                 storage_options=storage_options(settings) or None)
    except Exception as exc:
        raise LakewatchError(f"cannot create the {name} table at {table_uri(settings, name)}: {exc}") from exc
