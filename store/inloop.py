"""SQLite in the event loop's own thread: the subset of SQLAlchemy's `AsyncEngine` /
`AsyncConnection` the store uses, over a synchronous SQLAlchemy `Engine` on the standard
`sqlite3` module.

Why: through aiosqlite every statement (and BEGIN, COMMIT, cursor open and close) is a hop to
a worker thread and back (a queue, a future, a wake-up of the loop), and SQLAlchemy's async
layer adds a greenlet switch per call; the profile of the chat path put most of the
server's CPU there. A SQLite statement of the chat path takes a few microseconds in the calling
thread, so it runs there.

The rules that keep the loop from ever waiting on SQLite's own locks:

- **One writer at a time, queued in asyncio** (`WriterGate`): a connection of the write
  engine takes the gate before its transaction begins (`BEGIN IMMEDIATE`) and gives it back
  when it goes back to the pool. A task that would wait for the gate longer than
  `wait_s` (the pool timeout) gets `Unavailable` (503), as a request that finds the pool
  exhausted did before. Reads (`execution_options(wolive_read=True)`) take no gate: WAL gives
  each its snapshot.
- **Another process's write lock is waited for without blocking the loop**: connections run
  with a short `busy_timeout` (`LOOP_BUSY_TIMEOUT_MS`, the longest the loop may block on a
  lock), and `BEGIN IMMEDIATE` is retried after `asyncio.sleep`s until `busy_wait_s`; then the
  error goes the usual way (the store's `handle_error` hook: `Unavailable`, logged once per
  outage).
- Reads that may take long (history, search over many messages) run in two threads
  (`execution_options(wolive_offload=True)`: the store's `slow_read_engine`), so a long scan
  never holds up the chat path; everything else runs in the loop.
- A task holds at most one write connection: a nested one would wait for itself, so it is a
  `RuntimeError` at once instead of a 503 after the timeout.

COMMIT keeps `synchronous=FULL` (an acknowledged message survives a power cut): in WAL mode
that is one fsync of the WAL per commit, in this thread too, and it costs loop time.
Sending the COMMIT alone to a one-thread executor was tried and reverted: it costs more CPU
per message (GIL hand-over and wake-ups) and lowers the flat-out rate, with no better p99
(docs/performance.md, "SQLite in the loop, compiled chat statements"). A deployment on a
slow disk is where that trade turns.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Generator
from typing import Any

from sqlalchemy.engine import Connection, Engine

from .errors import Unavailable
from .pool import WARN_EVERY_S

log = logging.getLogger("wolive.store")

#: The longest (ms) a statement may block the event loop waiting for another process's lock
#: (`PRAGMA busy_timeout` of every connection); longer waits are asyncio sleeps.
LOOP_BUSY_TIMEOUT_MS = 10
#: Threads for reads that may take long (history, search: `InLoopEngine.offload`).
READ_THREADS = 2
#: Pauses (s) between attempts at `BEGIN IMMEDIATE` while another process writes.
RETRY_PAUSES_S = (0.002, 0.005, 0.01, 0.02, 0.05)


def _busy(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text


class WriterGate:
    """A FIFO lock for the one writer SQLite allows, with a bounded wait. Not thread-safe:
    used from the event loop."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.owner: asyncio.Task[Any] | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Gate waits that ran out (`Unavailable`), for tests and logs.
        self.timeouts = 0
        self._last_warning = 0.0
        #: Run the reads of engines made with `wolive_offload` (`InLoopEngine.offload`).
        self.read_threads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="sqlite-read")
        #: See `InLoopEngine.on_unavailable`.
        self.on_unavailable: Callable[[BaseException], BaseException] = \
            lambda exc: Unavailable(f"{type(exc).__name__}: {exc}")

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if self.owner is not None and self.owner is task:
            raise RuntimeError("this task already holds a SQLite write connection "
                               "(a nested write transaction would wait for itself)")
        if self.owner is None and not self._waiters:
            self.owner = task
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.wait_s)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if fut.done() and not fut.cancelled():
                # Handed the gate just as the wait ended: pass it on.
                self.owner = task
                self.release()
            else:
                fut.cancel()
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.timeouts += 1
            now = time.monotonic()
            if not self._last_warning or now - self._last_warning >= WARN_EVERY_S:
                self._last_warning = now
                log.warning("database pool exhausted: the SQLite writer busy for %.1f s; "
                            "answering 503", self.wait_s)
            raise Unavailable(f"no database connection free within {self.wait_s} s "
                              "(the SQLite writer is busy)") from None
        self.owner = task

    def release(self) -> None:
        self.owner = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                # The waiter becomes owner when it resumes; nobody else may take the gate
                # meanwhile (a placeholder owner keeps `acquire`'s fast path out).
                self.owner = _HANDED
                fut.set_result(None)
                return

    @property
    def busy(self) -> bool:
        return self.owner is not None


#: Owner of the gate between its hand-over and the waiter resuming.
_HANDED: Any = object()


class InLoopConnection:
    """What `AsyncConnection` offers the store, running each call synchronously."""

    def __init__(self, engine: InLoopEngine) -> None:
        self.engine = engine
        self.sync_connection: Connection | None = None
        self._gate = False

    # -- life ------------------------------------------------------------------------
    async def start(self) -> InLoopConnection:
        if not self.engine.reads_only:
            await self.engine.gate.acquire()
            self._gate = True
        try:
            self.sync_connection = self.engine.sync_engine.connect()
        except BaseException:
            self._release_gate()
            raise
        return self

    def __await__(self) -> Generator[Any, None, InLoopConnection]:
        return self.start().__await__()

    async def __aenter__(self) -> InLoopConnection:
        if self.sync_connection is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        conn, self.sync_connection = self.sync_connection, None
        try:
            if conn is not None:
                conn.close()
        finally:
            self._release_gate()

    def _release_gate(self) -> None:
        if self._gate:
            self._gate = False
            self.engine.gate.release()

    # -- transactions ----------------------------------------------------------------
    async def begin_transaction(self) -> None:
        """Begin: `BEGIN IMMEDIATE` for a writer (another process's lock waited for with
        asyncio sleeps, at most `busy_wait_s`; then `Unavailable` through the engine's
        `on_unavailable`), a deferred `BEGIN` for a reader (the store's `begin` listener)."""
        conn = self._conn
        if self.engine.reads_only:
            conn.begin()
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        deadline = time.monotonic() + self.engine.busy_wait_s
        attempt = 0
        sync_engine = self.engine.sync_engine
        if sync_engine.dispatch.before_cursor_execute:
            # Counted and seen like any statement (bench/serve.py's counters).
            sync_engine.dispatch.before_cursor_execute(conn, None, "BEGIN IMMEDIATE", (),
                                                       None, False)
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise self.engine.on_unavailable(exc) from exc
            pause = RETRY_PAUSES_S[min(attempt, len(RETRY_PAUSES_S) - 1)]
            attempt += 1
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        # The store's `begin` listener sees this and sends no BEGIN of its own.
        conn.info["wolive_begun"] = True
        try:
            conn.begin()
        finally:
            conn.info.pop("wolive_begun", None)

    def begin_nested(self) -> _Nested:
        """`async with conn.begin_nested():` a SAVEPOINT, released on a clean exit, rolled
        back to on an exception."""
        return _Nested(self._conn)

    def in_transaction(self) -> bool:
        return self.sync_connection is not None and self.sync_connection.in_transaction()

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    # -- statements ------------------------------------------------------------------
    async def execute(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        conn = self._conn
        if not conn.in_transaction():
            await self.begin_transaction()
        if self.engine.offload:
            frozen = await self._in_thread(
                lambda: conn.execute(statement, parameters, **kw).freeze())
            return frozen()
        return conn.execute(statement, parameters, **kw)

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        """`fn()` (a read on this connection) in the engine's read threads, the result
        fetched there too. The task waits, so nothing else touches the connection
        meanwhile; a task cancelled meanwhile interrupts the statement (`sqlite3`'s
        `interrupt()`) and waits for the thread to let go of the connection."""
        raw: Any = self._conn.connection.dbapi_connection
        future = self.engine.gate.read_threads.submit(fn)
        wrapped = asyncio.wrap_future(future)
        # Its outcome is read here or, after a cancel, dropped (never "not retrieved").
        wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.shield(wrapped)
        except asyncio.CancelledError:
            raw.interrupt()
            try:
                future.result()
            except Exception:  # noqa: BLE001 - interrupted: what it raised is moot
                pass
            raise

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        conn = self._conn
        if not conn.in_transaction():
            await self.begin_transaction()
        return conn.exec_driver_sql(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def run_sync(self, fn: Any, *args: Any, **kw: Any) -> Any:
        conn = self._conn
        if not conn.in_transaction():
            await self.begin_transaction()
        return fn(conn, *args, **kw)

    def get_execution_options(self) -> Any:
        return self._conn.get_execution_options()

    @property
    def info(self) -> dict[Any, Any]:
        return self._conn.info

    @property
    def _conn(self) -> Connection:
        if self.sync_connection is None:
            raise RuntimeError("connection is closed")
        return self.sync_connection


class _Nested:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.trans: Any = None

    async def __aenter__(self) -> Any:
        self.trans = self.conn.begin_nested()
        return self.trans

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.trans.is_active:
            return
        if exc_type is None:
            self.trans.commit()
        else:
            self.trans.rollback()


class _Begin:
    """`async with engine.begin() as conn`: a connection in a transaction, committed on a
    clean exit, rolled back on an exception, closed (gate released) either way."""

    def __init__(self, engine: InLoopEngine) -> None:
        self.conn = InLoopConnection(engine)

    async def __aenter__(self) -> InLoopConnection:
        await self.conn.start()
        try:
            await self.conn.begin_transaction()
        except BaseException:
            await self.conn.close()
            raise
        return self.conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            sync = self.conn.sync_connection
            if sync is not None and sync.in_transaction():
                if exc_type is None:
                    sync.commit()
                else:
                    sync.rollback()
        finally:
            await self.conn.close()


class InLoopEngine:
    """What `AsyncEngine` offers the store (`begin`, `connect`, `execution_options`,
    `dispose`, `sync_engine`, `dialect`, `pool`), over `sync_engine` run in the calling
    thread. Engines made by `execution_options` share the writer gate."""

    def __init__(self, sync_engine: Engine, gate: WriterGate, busy_wait_s: float) -> None:
        self.sync_engine = sync_engine
        self.gate = gate
        self.busy_wait_s = busy_wait_s
        self.dialect = sync_engine.dialect
        self.pool = sync_engine.pool
        self.url = sync_engine.url
        options = sync_engine.get_execution_options()
        self.reads_only = bool(options.get("wolive_read"))
        #: Reads that may take long (a history search scanning many messages) run in
        #: `WriterGate.read_threads`, not in the loop (`execution_options(wolive_offload=
        #: True)`, read-only engines only).
        self.offload = self.reads_only and bool(options.get("wolive_offload"))

    def execution_options(self, **options: Any) -> InLoopEngine:
        return InLoopEngine(self.sync_engine.execution_options(**options), self.gate,
                            self.busy_wait_s)

    @property
    def on_unavailable(self) -> Callable[[BaseException], BaseException]:
        """Turns a SQLite "locked" past `busy_wait_s` into the error to raise (shared by
        the engines `execution_options` makes; the store sets it: `Unavailable`, logged
        once per outage)."""
        return self.gate.on_unavailable

    @on_unavailable.setter
    def on_unavailable(self, fn: Callable[[BaseException], BaseException]) -> None:
        self.gate.on_unavailable = fn

    def connect(self) -> InLoopConnection:
        """A connection (a writer's holds the gate until closed); `await` it or use it as
        `async with`."""
        return InLoopConnection(self)

    def begin(self) -> _Begin:
        return _Begin(self)

    async def dispose(self) -> None:
        self.sync_engine.dispose()
        self.gate.read_threads.shutdown(wait=False)
