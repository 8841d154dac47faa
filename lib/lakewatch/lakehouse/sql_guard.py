"""The read-only check of `lakewatch sql`: one query over the lakehouse's tables, judged on Spark's own parse.

A statement is parsed by the session's SQL parser (nothing runs) and its plan, subqueries included, is
walked as Spark serialises it (`toJSON`):
- the statement must be a query (SELECT / WITH / VALUES ...) or one of a few read-only commands (SHOW TABLES,
  SHOW VIEWS, SHOW COLUMNS, SHOW FUNCTIONS, DESCRIBE); every other command (INSERT, DELETE, UPDATE, MERGE,
  CREATE, DROP, ALTER, CACHE, SET, ...) and every write anywhere in the plan is refused;
- every relation must be one of the lakehouse's views (or a CTE of the statement): no `delta.`/`text.`/
  `parquet.` paths, no catalog tables;
- table-valued functions other than `range`, and functions that reach into the JVM (reflect, java_method)
  are refused.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Iterator

from lakewatch.errors import QueryError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_PLANS = "org.apache.spark.sql.catalyst.plans.logical."
READ_ONLY_COMMANDS = {
    _PLANS + name for name in ("ShowTables", "ShowViews", "ShowColumns", "ShowFunctions", "DescribeRelation",
                               "DescribeColumn", "DescribeFunction", "ShowTableExtended")
}
WRITES = re.compile(r"Insert|Write|Append|Overwrite|Merge|Delete|Update|Replace|Create|Drop|Alter|Cache|Truncate")
RELATIONS = {"UnresolvedRelation", "UnresolvedTableOrView", "UnresolvedTable", "UnresolvedView"}
ALLOWED_TVFS = {"range"}
FORBIDDEN_FUNCTIONS = {"reflect", "java_method", "try_reflect"}


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every node of a plan's JSON, expressions and subquery plans included."""
    if isinstance(tree, dict):
        if "class" in tree:
            yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)


def _names(value: Any) -> list[str]:
    """A multipart identifier as toJSON writes it ("[a, b]" or a list)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [p.strip() for p in text.split(",")] if text else []


def check_read_only(spark: "SparkSession", statement: str, tables: list[str]) -> None:
    """Raise QueryError unless the statement is one read-only query over `tables` (names, case-insensitive)."""
    from pyspark.errors import ParseException

    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        plan = parser.parsePlan(statement)
    except ParseException as exc:
        raise QueryError(f"not a valid SQL statement: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # py4j wraps the parser's own exception when pyspark does not convert it
        if "ParseException" not in type(exc).__name__ + str(exc)[:300]:
            raise
        raise QueryError(f"not a valid SQL statement: {str(exc).splitlines()[0][:300]}") from None
    jvm = spark.sparkContext._jvm
    command = jvm.java.lang.Class.forName(_PLANS + "Command")
    root = plan.getClass().getName()
    if command.isInstance(plan) and root not in READ_ONLY_COMMANDS:
        raise QueryError(f"`lakewatch sql` only reads: {root.rsplit('.', 1)[-1]} statements are refused "
                         "(one SELECT / WITH / SHOW / DESCRIBE over the lakehouse's tables)")
    nodes = list(_nodes(json.loads(plan.toJSON())))
    known = {t.lower() for t in tables}
    ctes = {str(rel["_1"]).lower() for n in nodes for rel in n.get("cteRelations", []) if isinstance(rel, dict)}
    for node in nodes:
        cls = str(node["class"])
        short = cls.rsplit(".", 1)[-1]
        if cls.startswith(_PLANS) and cls not in READ_ONLY_COMMANDS and (
            WRITES.search(short) or _is_command(jvm, command, cls)
        ):
            raise QueryError(f"`lakewatch sql` only reads: the statement holds a {short}, which is refused")
        if short in RELATIONS:
            parts = _names(node.get("multipartIdentifier", node.get("nameParts", "")))
            name = ".".join(parts)
            if len(parts) != 1 or parts[0].lower() not in known | ctes:
                raise QueryError(
                    f"`lakewatch sql` reads the lakehouse's tables by name only; {name!r} is not one of them "
                    f"(tables: {', '.join(sorted(tables))})"
                )
        if short == "UnresolvedTableValuedFunction":
            fn = ".".join(_names(node.get("name", ""))).lower()
            if fn not in ALLOWED_TVFS:
                raise QueryError(f"`lakewatch sql` does not run the table function {fn}()")
        if short == "UnresolvedFunction":
            fn = ".".join(_names(node.get("nameParts", ""))).lower()
            if fn in FORBIDDEN_FUNCTIONS:
                raise QueryError(f"`lakewatch sql` does not run {fn}()")


def _is_command(jvm: Any, command: Any, cls: str) -> bool:
    try:
        return bool(command.isAssignableFrom(jvm.java.lang.Class.forName(cls)))
    except Exception:  # a class the JVM cannot load by name: not a command we know of
        return False
