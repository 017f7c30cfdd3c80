"""The base every repository mixin builds on: the engine and small query helpers."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Row = dict[str, Any]


class StoreBase:
    """Holds the engine. Mixins (one module per product area) subclass this and are listed
    in `store.repo.Store`'s bases; each method commits its own transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: The same pool, for transactions that only read: on SQLite they begin with a
        #: plain (deferred) BEGIN and so never wait for, or block, a writer (WAL).
        self.read_engine = engine.execution_options(wolive_read=True)
        self.dialect = engine.dialect.name

    @staticmethod
    def _inserted_id(result: Any) -> int:
        """The new row's primary key after an INSERT."""
        key = result.inserted_primary_key
        if key is None:  # every table here has an autoincrement key
            raise RuntimeError("INSERT returned no primary key")
        return int(key[0])

    @staticmethod
    async def _one(conn: AsyncConnection, stmt: Any) -> Row | None:
        row = (await conn.execute(stmt)).mappings().first()
        return dict(row) if row is not None else None

    async def _fetch_one(self, stmt: Any) -> Row | None:
        async with self.read_engine.connect() as conn:
            return await self._one(conn, stmt)

    async def _fetch_all(self, stmt: Any) -> list[Row]:
        async with self.read_engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]

