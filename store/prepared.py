"""Statements of the chat path compiled once and run on the driver's cursor.

The profile of a visitor message put most of the server's CPU in SQLAlchemy's per-execute
work (cache key, compiled-cache lookup, parameter processing, the execution context and the
result objects; on MariaDB also a greenlet switch per call), a few times what the driver
itself costs. For the few statements every message runs, SQLAlchemy still writes the SQL
(`Prepared` builds a Core statement per dialect and compiles it once, so dialect
differences stay SQLAlchemy's), but they are sent straight to the DBAPI cursor of the
connection the transaction holds, with their parameters in the compiled order.

Only statements whose parameters need no bind processing and whose result columns need no
result processing for the dialect qualify (checked at compile time: `ValueError`
otherwise): plain strings and integers, on SQLite and MySQL/MariaDB, with pymysql's and
sqlite3's own conversions (the same values SQLAlchemy returns for those types).

Every statement still passes SQLAlchemy's `before_cursor_execute` event (the row cache's
invalidation, the benchmark's counters), and a driver error that means the database cannot
be used becomes `Unavailable` through the store's hook, as through SQLAlchemy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Enum
from sqlalchemy.engine import Dialect


@dataclass(frozen=True)
class Compiled:
    sql: str
    #: Parameter names in the order the positional placeholders want them.
    names: tuple[str, ...]
    #: Values of the parameters the statement carries itself (literals in the expression).
    defaults: dict[str, Any]

    #: Parameters of an `Enum` column: the values allowed (checked here, as SQLAlchemy's
    #: `validate_strings` would).
    enums: dict[str, frozenset[str]]

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        merged = {**self.defaults, **values}
        for name, allowed in self.enums.items():
            if merged[name] is not None and merged[name] not in allowed:
                raise LookupError(f"{merged[name]!r} is not among the values of {name}")
        return tuple(merged[name] for name in self.names)


def _plain_enum(type_: Any) -> bool:
    """A string `Enum` (no Python enum class): its processors only check the value."""
    return isinstance(type_, Enum) and type_.enum_class is None


class Prepared:
    """A statement built by `build(dialect_name)` (a Core statement using `bindparam`s),
    compiled once per dialect."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self.build = build
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> Compiled:
        stmt = self.build(dialect.name)
        comp: Any = stmt.compile(dialect=dialect)
        if not dialect.positional or comp.positiontup is None:
            raise ValueError(f"{dialect.name}: not a positional paramstyle")
        if comp.literal_execute_params or comp.post_compile_params:
            raise ValueError("a statement with post-compile parameters")
        types = {name: bind.type for name, bind in comp.binds.items()}
        enums = {}
        for name in comp.positiontup:
            if _plain_enum(types.get(name)):
                enums[name] = frozenset(types[name].enums)
            elif comp._bind_processors.get(name):
                raise ValueError(f"parameter {name} needs SQLAlchemy's bind processing")
        for col in comp._result_columns or ():
            type_ = col[3]
            if not _plain_enum(type_) and \
                    type_.dialect_impl(dialect).result_processor(dialect, None):
                raise ValueError(f"column {col[0]} needs SQLAlchemy's result processing")
        return Compiled(comp.string, tuple(comp.positiontup),
                        dict(comp.construct_params(_check=False)), enums)
