"""The base every repository mixin builds on: the engine, small query helpers, and telling an
unusable database (`Unavailable`, logged once per outage) from a failed statement."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Table, and_, delete, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .errors import NotFound, Unavailable
from .inloop import InLoopConnection, InLoopEngine
from .prepared import Prepared
from .rowcache import DEFAULT_TTL_S, RowCache, written_table

Row = dict[str, Any]


class Ran(NamedTuple):
    """What `StoreBase._run` returns: the rows (dicts), the new row's id after an INSERT
    (the driver's lastrowid), the rows the statement changed."""

    rows: list[Row]
    lastrowid: int | None
    rowcount: int
log = logging.getLogger("wolive.store")

#: MySQL/MariaDB client and server errors that mean "cannot reach or use the server now", not
#: "this statement is wrong" (MySQL reference, client and server error codes): too many
#: connections, shutting down, cannot connect (socket, TCP, unknown host), server gone away,
#: lost connection (twice), lost connection during a read.
MYSQL_UNAVAILABLE = frozenset({1040, 1053, 2002, 2003, 2005, 2006, 2013, 2055})


def is_unavailable(exc: BaseException) -> bool:
    """Whether a driver error means the database cannot be used right now: a socket error, a
    MySQL error in `MYSQL_UNAVAILABLE` (or the driver's "connection closed" InterfaceError),
    SQLite's "database is locked / busy" after its busy timeout."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    module = type(exc).__module__ or ""
    if module.startswith(("pymysql", "aiomysql")):
        code = exc.args[0] if exc.args else None
        return code in MYSQL_UNAVAILABLE or type(exc).__name__ == "InterfaceError"
    return False


class HeldTransaction:
    """A transaction a task holds (see `store.conversations.ConversationStore.assignment`): while
    `active`, every query of `store` in that task (not in tasks it starts) runs on `conn`,
    inside it."""

    def __init__(self, store: StoreBase, conn: AsyncConnection) -> None:
        self.store = store
        self.conn = conn
        self.task = asyncio.current_task()
        self.active = True
        #: Run, in order, once the transaction has committed (`StoreBase.on_commit`).
        self.after_commit: list[Callable[[], object]] = []


#: The transaction the current task holds, if any. Tasks started meanwhile copy this
#: context, so `active` (cleared when the holder ends) is checked, not only presence.
HELD: ContextVar[HeldTransaction | None] = ContextVar("wolive_held_transaction", default=None)


class StoreBase:
    """Holds the engine. Mixins (one module per product area) subclass this and are listed
    in `store.Store`'s bases; each method commits its own transaction."""

    def __init__(self, engine: AsyncEngine | InLoopEngine,
                 row_cache_s: float = DEFAULT_TTL_S) -> None:
        self.engine: Any = engine
        if isinstance(engine, InLoopEngine):  # SQLite in the loop (store.inloop)
            engine.on_unavailable = self._unavailable
        #: Business and agent rows the chat path reads on every request (`store.rowcache`:
        #: emptied by this store's own writes to them, entries trusted `row_cache_s`).
        self.row_cache = RowCache(row_cache_s)
        #: The same pool, for transactions that only read: on SQLite they begin with a
        #: plain (deferred) BEGIN and so never wait for, or block, a writer (WAL).
        self.read_engine: Any = engine.execution_options(wolive_read=True)
        #: For reads that may take long (history, search): on SQLite they run in a thread
        #: (`store.inloop`), elsewhere this is `read_engine`.
        self.slow_read_engine: Any = (
            engine.execution_options(wolive_read=True, wolive_offload=True)
            if isinstance(engine, InLoopEngine) else self.read_engine)
        self.dialect = engine.dialect.name
        #: When the current outage began (`time.monotonic()`), None while the database works.
        self.unavailable_since: float | None = None
        event.listen(engine.sync_engine, "handle_error", self._on_error)
        event.listen(engine.sync_engine.pool, "checkout", self._on_checkout)
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_statement)
        event.listen(engine.sync_engine, "commit", self._on_end)
        event.listen(engine.sync_engine, "rollback", self._on_end)
        event.listen(engine.sync_engine.pool, "checkin", self._on_checkin)
        self._on_query: Callable[[str, float], None] | None = None
        self._on_query_error: Callable[[bool], None] | None = None

    # ---- observing statements (realtime.metrics) --------------------------------------

    def observe_queries(self, on_query: Callable[[str, float], None],
                        on_error: Callable[[bool], None]) -> None:
        """From now on, call `on_query(statement, seconds)` after each statement the
        database answered, and `on_error(unavailable)` for each that failed (`unavailable`:
        the database could not be used, see `is_unavailable`). Costs two clock reads per
        statement; nothing is timed before this is called."""
        self._on_query, self._on_query_error = on_query, on_error
        sync = self.engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._query_started)
        event.listen(sync, "after_cursor_execute", self._query_done)

    @staticmethod
    def _query_started(conn: Any, *_args: Any) -> None:
        conn.info["wolive_t0"] = time.perf_counter()

    def _query_done(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        t0 = conn.info.pop("wolive_t0", None)
        if t0 is not None and self._on_query is not None:
            self._on_query(statement, time.perf_counter() - t0)

    # ---- the row cache: invalidation (store.rowcache) ---------------------------------

    def _on_statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """A write to a cached table empties it now, and again when its transaction ends
        and when its connection is back in the pool (after the commit: `_on_checkin`)."""
        table = written_table(statement)
        if table is not None:
            self.row_cache.invalidate(table)
            conn.info.setdefault("wolive_dirty", set()).add(table)

    def _on_end(self, conn: Any) -> None:
        if conn.invalidated:
            # Its DBAPI connection is gone (a statement cancelled or failed mid-way): what
            # it wrote is not known any more, so nothing cached is trusted.
            self.row_cache.invalidate_all()
            return
        for table in conn.info.get("wolive_dirty", ()):
            self.row_cache.invalidate(table)

    def _on_checkin(self, _dbapi_conn: Any, record: Any) -> None:
        dirty = record.info.pop("wolive_dirty", None) if record is not None else None
        for table in dirty or ():
            self.row_cache.invalidate(table)

    async def _cached_row(self, table: str, key: Any, prepared: Prepared, what: str,
                          **params: Any) -> Row:
        """`table`'s row `key`, from the row cache when it holds it, else read by
        `prepared` with `params` (store.prepared; nothing is built on a hit). Raises
        `NotFound` naming `what` and the key."""
        row = self.row_cache.get(table, key)
        if row is not None:
            return row
        generation = self.row_cache.generation[table]
        async with self._reading() as conn:
            rows = (await self._run(conn, prepared, **params)).rows
        if not rows:
            raise NotFound(f"{what} {key}")
        self.row_cache.put(table, key, rows[0], generation)
        return rows[0]

    def _on_error(self, context: Any) -> None:
        """SQLAlchemy's `handle_error` hook: an unusable database becomes `Unavailable`
        (logged once per outage); other errors go on as they are. A pool pre-ping's failure
        is left alone: the pool reconnects by itself."""
        if context.is_pre_ping:
            return
        orig = context.original_exception
        if not isinstance(orig, Exception):  # a cancelled task (shutdown): not an outage
            return
        unavailable = context.is_disconnect or is_unavailable(orig)
        if self._on_query_error is not None:
            if context.connection is not None:
                context.connection.info.pop("wolive_t0", None)
            self._on_query_error(unavailable)
        if not unavailable:
            return
        raise self._unavailable(orig) from orig

    def _unavailable(self, orig: BaseException) -> Unavailable:
        """The `Unavailable` to raise for `orig` (a driver error meaning the database cannot
        be used now); the outage is logged once, when it begins."""
        if self.unavailable_since is None:
            self.unavailable_since = time.monotonic()
            log.warning("database unavailable (%s: %s); answering 503 until it is back",
                        type(orig).__name__, orig)
        return Unavailable(f"{type(orig).__name__}: {orig}")

    def _on_checkout(self, _dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # A connection handed out unpinged (`store.pool.ping_when_idle`) proves nothing.
        if self.unavailable_since is not None and not record.info.get("wolive_unverified"):
            log.warning("database is back after %.1f s",
                        time.monotonic() - self.unavailable_since)
            self.unavailable_since = None

    def _held_transaction(self) -> HeldTransaction | None:
        """The transaction this task holds on this store, if any."""
        held = HELD.get()
        if held is not None and held.active and held.store is self and \
                held.task is asyncio.current_task():
            return held
        return None

    def _held(self) -> AsyncConnection | None:
        held = self._held_transaction()
        return held.conn if held is not None else None

    def on_commit(self, fn: Callable[[], object]) -> None:
        """Run `fn` once what this task wrote is committed: at once outside a held
        transaction, else when its holder commits (never, if it rolls back). For pushing
        events about a write only after the write is there for everyone."""
        held = self._held_transaction()
        if held is not None:
            held.after_commit.append(fn)
        else:
            fn()

    @asynccontextmanager
    async def unit(self, read_committed: bool = True) -> AsyncIterator[AsyncConnection]:
        """One write transaction for several store calls of this task: inside the block,
        every `_writing` / `_reading` of this store in this task runs on it (one pool
        checkout, one BEGIN, one COMMIT instead of one each), committed when the block ends,
        rolled back on an exception; `on_commit` functions run after the commit.
        Re-entrant within a task (an inner `unit` is the outer one). Yields the connection.

        On MariaDB/MySQL in READ COMMITTED unless `read_committed` is False (each read sees
        what others committed before it; no gap locks on reads). On SQLite the transaction
        begins IMMEDIATE (`store.inloop`): other writers wait for the block, so keep it
        short and free of waits on anything but this store."""
        conn = self._held()
        if conn is not None:
            yield conn
            return
        async with self.engine.begin() as conn:
            if self.dialect == "mysql" and read_committed:
                # For this transaction only: one round trip, where the engine's
                # `isolation_level` option costs four (SET SESSION and COMMIT, at checkout
                # and again when the connection goes back).
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            held = HeldTransaction(self, conn)
            token = HELD.set(held)
            try:
                yield conn
            finally:
                held.active = False
                HELD.reset(token)
        for fn in held.after_commit:
            fn()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction committed on exit; inside a held transaction, that one
        (committed when its holder ends)."""
        conn = self._held()
        if conn is not None:
            yield conn
            return
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (`read_engine`); inside a held transaction, that one (so
        the holder reads what it wrote, and holds one pooled connection, not two)."""
        conn = self._held()
        if conn is not None:
            yield conn
            return
        async with self.read_engine.connect() as conn:
            yield conn

    async def _run(self, conn: Any, prepared: Prepared, **values: Any) -> Ran:
        """Run `prepared` (store.prepared) with `values` on the DBAPI cursor of `conn`, the
        transaction's connection (`_writing` / `_reading`): SQLite in the loop's thread
        (`store.inloop`) or aiomysql. Raises `Unavailable` as SQLAlchemy's path would."""
        sync_engine = self.engine.sync_engine
        compiled = prepared.compiled(sync_engine.dialect)
        args = compiled.args(values)
        if isinstance(conn, InLoopConnection):
            sync = conn._conn
            if not sync.in_transaction():
                await conn.begin_transaction()
            if sync_engine.dispatch.before_cursor_execute:
                sync_engine.dispatch.before_cursor_execute(sync, None, compiled.sql, args,
                                                           None, False)
            raw: Any = sync.connection.dbapi_connection
            try:
                cur = raw.execute(compiled.sql, args)
                names = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if names else []
                ran = Ran([dict(zip(names, r)) for r in rows], cur.lastrowid, cur.rowcount)
                cur.close()
                if sync_engine.dispatch.after_cursor_execute:  # the metrics' timing
                    sync_engine.dispatch.after_cursor_execute(sync, None, compiled.sql, args,
                                                              None, False)
                return ran
            except sqlite3.OperationalError as exc:
                if is_unavailable(exc):
                    raise self._unavailable(exc) from exc
                raise
        sync = conn.sync_connection
        if not sync.in_transaction():
            await conn.begin()  # as SQLAlchemy's autobegin (the pool's connection checks)
        if sync_engine.dispatch.before_cursor_execute:
            sync_engine.dispatch.before_cursor_execute(sync, None, compiled.sql, args, None,
                                                       False)
        driver = (await conn.get_raw_connection()).driver_connection
        try:
            cur = await driver.cursor()
            try:
                await cur.execute(compiled.sql, args)
                names = [d[0] for d in cur.description] if cur.description else []
                rows = await cur.fetchall() if names else []
                if sync_engine.dispatch.after_cursor_execute:  # the metrics' timing
                    sync_engine.dispatch.after_cursor_execute(sync, None, compiled.sql, args,
                                                              None, False)
                return Ran([dict(zip(names, r)) for r in rows], cur.lastrowid, cur.rowcount)
            finally:
                await cur.close()
        except Exception as exc:
            if is_unavailable(exc):
                # What the connection did is not known any more: the pool drops it.
                await conn.invalidate()
                raise self._unavailable(exc) from exc
            raise

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
        async with self._reading() as conn:
            return await self._one(conn, stmt)

    async def _fetch_all(self, stmt: Any) -> list[Row]:
        async with self._reading() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]

    async def _count(self, table: Table, where: ColumnElement[bool]) -> int:
        """How many rows of `table` match `where`."""
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(table).where(where))).scalar() or 0)

    async def _delete(self, table: Table, where: ColumnElement[bool], what: str) -> None:
        """Delete the rows of `table` matching `where`; raises `NotFound(what)` when none did."""
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(table).where(where))
        if not res.rowcount:
            raise NotFound(what)

    # ---- a business's own rows, by id (FAQ entries, tabs) ------------------------------------

    async def _insert_row(self, table: Table, key: str, **values: Any) -> Row:
        """Insert `values` into `table` and return the whole new row (read back by its
        autoincrement `key` column)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(table).values(**values))
            return await self._one(conn, select(table).where(
                table.c[key] == self._inserted_id(res))) or {}

    async def _update_owned(self, table: Table, key: str, row_id: int, business_id: str,
                            what: str, **values: Any) -> Row:
        """Write `values` on the row of `table` whose `key` column is `row_id`, when it
        belongs to `business_id`; returns the row. Raises `NotFound(what)` otherwise."""
        where = and_(table.c[key] == row_id, table.c.business_id == business_id)
        async with self.engine.begin() as conn:
            if await self._one(conn, select(table.c[key]).where(where)) is None:
                raise NotFound(what)
            await conn.execute(update(table).where(where).values(**values))
            return await self._one(conn, select(table).where(where)) or {}

    async def _owned_rows(self, table: Table, key: str, business_id: str,
                          limit: int) -> list[Row]:
        """The first `limit` rows of `table` of `business_id`, in `key` order."""
        return await self._fetch_all(select(table).where(
            table.c.business_id == business_id).order_by(table.c[key]).limit(limit))

    async def _delete_owned(self, table: Table, key: str, row_id: int, business_id: str,
                            what: str) -> None:
        """Delete the row of `table` whose `key` column is `row_id` when it belongs to
        `business_id`. Raises `NotFound(what)` otherwise."""
        await self._delete(table, and_(table.c[key] == row_id,
                                       table.c.business_id == business_id), what)
