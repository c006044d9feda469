"""Bulk IO with Postgres COPY: never row-by-row inserts, never DataFrame.to_sql.

Writes go through a temporary staging table, so a load is one statement per table and
one transaction per batch: it lands whole or not at all.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    import pandas as pd


def cursor(conn: Connection) -> Any:
    """The psycopg2 cursor under a SQLAlchemy connection (for COPY)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def ident(name: str) -> str:
    # Table and column names come from code, never from data; quote them anyway.
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def bind(conn: Connection, statement: str, params: dict[str, Any]) -> str:
    """A statement with its `:name` parameters bound by psycopg2, for COPY (which takes
    none)."""
    import re

    pyformat = re.sub(r"(?<!:):(\w+)", r"%(\1)s", statement.replace("%", "%%"))
    return cursor(conn).mogrify(pyformat, params).decode()


def copy_in(conn: Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """COPY a DataFrame's columns into a table. Returns the number of rows copied."""
    buffer = io.StringIO()
    frame.to_csv(buffer, columns=list(columns), index=False, header=False, lineterminator="\n")
    buffer.seek(0)
    cols = ", ".join(ident(c) for c in columns)
    cursor(conn).copy_expert(f"COPY {ident(table)} ({cols}) FROM STDIN WITH (FORMAT csv)", buffer)
    return len(frame)


def _stage(conn: Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> str:
    stage = "stage_" + table.replace(".", "_")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{stage}")
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {stage} (LIKE {ident(table)} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    copy_in(conn, stage, frame, columns)
    return stage


def upsert(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    key: Sequence[str],
    columns: Sequence[str],
    *,
    replace_where: tuple[str, Any] | None = None,
) -> dict[str, int]:
    """Make `table` hold `frame`'s rows, keyed on `key`, in the caller's transaction.

    Rows with a known key are updated in place, new ones inserted. With
    ``replace_where=(column, value)``, rows of that partition that the frame no longer
    holds are deleted, so the partition ends up equal to the frame: re-running a load
    leaves the same rows, never duplicates.
    """
    stage = _stage(conn, table, frame, columns)
    cols = ", ".join(ident(c) for c in columns)
    keys = ", ".join(ident(c) for c in key)
    deleted = 0
    if replace_where is not None:
        column, value = replace_where
        match = " AND ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
        deleted = conn.exec_driver_sql(
            f"DELETE FROM {ident(table)} t WHERE t.{ident(column)} = %(value)s "
            f"AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})",
            {"value": value},
        ).rowcount
    updates = [c for c in columns if c not in key]
    on_conflict = (
        "DO UPDATE SET " + ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in updates)
        if updates
        else "DO NOTHING"
    )
    written = conn.exec_driver_sql(
        f"INSERT INTO {ident(table)} ({cols}) SELECT {cols} FROM {stage} "
        f"ON CONFLICT ({keys}) {on_conflict}"
    ).rowcount
    return {"written": written, "deleted": deleted}
