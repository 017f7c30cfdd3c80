"""The database's life: the engine for a URL, opening, schema migration, closing, pinging.

`normalise_url` turns a config URL into a SQLAlchemy URL; SQLite runs in the event loop
(`store.inloop`), MySQL/MariaDB through SQLAlchemy's async engine on aiomysql, both behind the
bounded pool of `store.pool`. `DatabaseStore.open` builds the `Store` on that engine and
brings the schema up to `SCHEMA_VERSION` (`store.migrations`).
"""
from __future__ import annotations

import os
import time
from typing import Any, Self
from urllib.parse import urlsplit

from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from . import schema as t
from .base import StoreBase
from .errors import ConfigError, Unavailable
from .inloop import LOOP_BUSY_TIMEOUT_MS, InLoopEngine, WriterGate
from .migrations import MIGRATIONS
from .pool import ping_when_idle, pool_options
from .rowcache import DEFAULT_TTL_S

#: Latest schema version this code knows (store/migrations.py lists them).
SCHEMA_VERSION = len(MIGRATIONS)

#: SQLite waits this long for another process's write lock before failing (ms; asyncio
#: sleeps, store.inloop); short transactions, so a wait this long means something is stuck.
SQLITE_BUSY_TIMEOUT_MS = 5000


def normalise_url(url: str, base_dir: str = ".") -> str:
    """Turn a config database URL into a SQLAlchemy URL: `sqlite+pysqlite` (run in the event
    loop, `store.inloop`) or `mysql+aiomysql` (SQLAlchemy's async engine).

    Accepts ``sqlite:///relative/or/absolute.db`` and ``mysql://user:pass@host:port/db``
    (``mariadb://`` too); drivers are chosen here, so config never names one.
    Relative SQLite paths are taken from `base_dir`. Raises `ConfigError` on any other scheme.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ConfigError("database.url: a SQLite URL needs a file path: sqlite:///data/wolive.db")
        if not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        return "sqlite+pysqlite:///" + path
    if scheme in ("mysql", "mariadb", "mysql+aiomysql"):
        u = make_url(url).set(drivername="mysql+aiomysql")
        query = dict(u.query)
        query.setdefault("charset", "utf8mb4")
        return u.set(query=query).render_as_string(hide_password=False)
    raise ConfigError(f"database.url: unknown scheme {scheme!r}; use sqlite:/// or mysql://")


def inloop_sqlite_engine(sa_url: str, pool_size: int | None,
                         pool_timeout: float | None) -> InLoopEngine:
    """The SQLite engine: the standard `sqlite3` module run in the event loop's thread
    (`store.inloop`), WAL, one writer at a time queued in asyncio for at most
    `pool_timeout` seconds (None: `pool.DEFAULT_TIMEOUT_S`). `pool_size` connections are
    kept open (None: the SQLite default); more open as needed, never waited for (a wait
    would block the loop), since only readers can be many."""
    size = pool_options("sqlite", pool_size, None, pool_timeout)
    sync_engine = create_engine(
        sa_url,
        poolclass=QueuePool, pool_size=max(1, size["pool_size"]), max_overflow=-1,
        connect_args={"check_same_thread": False})

    @event.listens_for(sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say where transactions begin: the
        # module's implicit BEGIN (only before a write) makes a SAVEPOINT after a SELECT
        # commit on RELEASE, breaking atomicity (SQLAlchemy docs, "Serializable isolation /
        # Savepoints / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # The loop blocks at most this long on another process's lock (store.inloop).
        cur.execute(f"PRAGMA busy_timeout={LOOP_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # A writer's BEGIN IMMEDIATE (the write lock up front, so a transaction that reads
        # then writes never fails to upgrade its lock: SQLITE_BUSY_SNAPSHOT under WAL) is
        # sent by `InLoopConnection.begin_transaction`, which waits for another process's
        # lock without blocking the loop. Read-only work (`read_engine`): a WAL snapshot.
        if conn.info.get("wolive_begun"):
            return
        read = conn.get_execution_options().get("wolive_read")
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return InLoopEngine(sync_engine, WriterGate(size["pool_timeout"]),
                        SQLITE_BUSY_TIMEOUT_MS / 1000)


class DatabaseStore(StoreBase):
    """Opening, migrating, pinging and closing the database."""

    @classmethod
    async def open(cls, url: str, base_dir: str = ".", migrate: bool = True,
                   pool_size: int | None = None, max_overflow: int | None = None,
                   pool_timeout: float | None = None,
                   row_cache_s: float = DEFAULT_TTL_S) -> Self:
        """Connect (creating a SQLite file and its folder if needed) and migrate.

        The pool (`store.pool`): `pool_size` connections kept, `max_overflow` more under
        load (None: the dialect's default), a request waits up to `pool_timeout` seconds
        for one and then gets `Unavailable`. Business and agent rows are cached for at most
        `row_cache_s` seconds (`store.rowcache`; 0: not cached). Raises `ConfigError` when
        the URL is unusable or the server cannot be reached.
        """
        sa_url = normalise_url(url, base_dir)
        engine: Any
        if sa_url.startswith("sqlite"):
            os.makedirs(os.path.dirname(sa_url.split(":///", 1)[1]) or ".", exist_ok=True)
            engine = inloop_sqlite_engine(sa_url, pool_size, pool_timeout)
        else:
            engine = create_async_engine(sa_url, pool_pre_ping=False, pool_recycle=3600,
                                         **pool_options("mysql", pool_size, max_overflow,
                                                        pool_timeout))
            ping_when_idle(engine.sync_engine.pool)
        store = cls(engine, row_cache_s)
        try:
            if migrate:
                await store.migrate()
            else:
                async with engine.connect() as conn:
                    await conn.execute(select(1))
        except (OperationalError, Unavailable) as exc:
            # An unreachable server comes as `Unavailable` (the store's error hook).
            await engine.dispose()
            cause = exc.orig if isinstance(exc, OperationalError) else exc.__cause__ or exc
            raise ConfigError(f"database.url: cannot use the database: {cause}") from exc
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def migrate(self) -> int:
        """Create or upgrade the schema; idempotent. Returns the schema version now in force."""
        async with self.engine.begin() as conn:
            if self.dialect == "mysql":
                # Nodes started together on a fresh database migrate one at a time (a named
                # lock per database; DDL commits implicitly, so a row lock would not hold).
                await conn.execute(text(
                    "SELECT GET_LOCK(CONCAT('wolive_migrate:', DATABASE()), 120)"))
            try:
                await conn.run_sync(t.metadata.create_all, checkfirst=True)
                have = (await conn.execute(
                    select(func.max(t.schema_version.c.version)))).scalar()
                for version in range((have or 0) + 1, SCHEMA_VERSION + 1):
                    await conn.run_sync(MIGRATIONS[version - 1])
                    await conn.execute(insert(t.schema_version).values(
                        version=version, applied_at=int(time.time())))
            finally:
                if self.dialect == "mysql":
                    await conn.execute(text(
                        "SELECT RELEASE_LOCK(CONCAT('wolive_migrate:', DATABASE()))"))
        return SCHEMA_VERSION

    async def ping(self) -> None:
        """A trivial query that reads a table (`/readyz`): returns when the database
        answers it; raises what the driver raised (`Unavailable` for an outage)."""
        await self.schema_version()

    async def schema_version(self) -> int:
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(
                select(func.max(t.schema_version.c.version)))).scalar() or 0)
