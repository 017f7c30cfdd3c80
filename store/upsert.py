"""One-statement "insert, or update the row with the same key" for both databases.

`INSERT … ON DUPLICATE KEY UPDATE` on MySQL/MariaDB, `INSERT … ON CONFLICT (key) DO UPDATE`
on SQLite: no read before the write, no savepoint, and none of the gap locks an UPDATE of a
missing key takes on InnoDB (two new visitors' UPDATE-then-INSERT deadlocked on them).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, sqlite


def upsert(dialect: str, table: Table, values: dict[str, Any], key: list[str],
           update: list[tuple[str, Any]]) -> Any:
    """The statement inserting `values` into `table`, or, when a row with the same `key`
    columns (a unique constraint of the table) exists, setting `update` on it instead.

    `update` is a list of (column name, value or SQL expression) applied in order; an
    expression over `table.c.x` reads the existing row's value. Order matters on MySQL,
    which evaluates the assignments left to right with the values already set, so put an
    assignment that reads a column before the one that changes it. `dialect` is the engine's
    dialect name ("mysql" or "sqlite"); raises `ValueError` for another one.
    """
    if dialect == "mysql":
        my = mysql.insert(table).values(**values)
        return my.on_duplicate_key_update(update)
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(**values)
        return lite.on_conflict_do_update(index_elements=key, set_=dict(update))
    raise ValueError(f"no upsert for the {dialect} dialect")
