"""One repository API over SQLite (sqlite3 in the event loop, store.inloop) and MySQL/MariaDB
(aiomysql).

SQLAlchemy Core 2.x handles the dialect differences and pooling; this module holds the SQL
the use cases need and nothing else (no Tornado, no HTTP errors: it raises `store.errors`).
Every write runs in its own transaction and is committed before the method returns, so a
caller that pushes an event after `await store.x(...)` never pushes an uncommitted write
(ARCHITECTURE.md, "Events go out after commit").
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (and_, bindparam, case, create_engine, delete, event, func, insert, select,
                        text, update)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from . import schema as t
from .agent_status import AgentStatusStore
from .agents import AgentStore
from .base import Row, StoreBase
from .content import ContentStore
from .history import HistoryStore
from .identity import IdentityStore
from .inloop import LOOP_BUSY_TIMEOUT_MS, InLoopEngine, WriterGate
from .migrations import MIGRATIONS
from .pool import ping_when_idle, pool_options
from .prepared import Prepared
from .presence import PresenceStore
from .rowcache import DEFAULT_TTL_S
from .quick_replies import QuickReplyStore
from .ratings import RatingStore
from .reports import FIRST_REPLY, ReportStore, track
from .waiting import WaitingStore
from .wechat import WechatStore
from .upsert import upsert
from .workbench import WorkbenchStore
from .errors import ConfigError, Conflict, NotFound, Unavailable

#: Latest schema version this code knows (store/migrations.py lists them).
SCHEMA_VERSION = len(MIGRATIONS)

#: MySQL index hint for per-conversation lookups in `wolive_chats` (schema migration 5).
CONVERSATION_INDEX_HINT = "FORCE INDEX (chats_conversation)"

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


def _visitor_and_queue(dialect: str) -> Any:
    """`add_message`'s read: the visitor and its queue row, one statement (`FOR UPDATE` on
    MySQL/MariaDB, so a blacklisting cannot slip in before the insert)."""
    v, q = t.visiter, t.queue
    stmt = (select(v, q.c.qid.label("q_qid"), q.c.service_id.label("q_service_id"),
                   q.c.state.label("q_state"), q.c.timestamp.label("q_timestamp"))
            .select_from(v.outerjoin(q, and_(q.c.visiter_id == v.c.visiter_id,
                                             q.c.business_id == v.c.business_id)))
            .where(and_(v.c.visiter_id == bindparam("visiter_id"),
                        v.c.business_id == bindparam("business_id"))))
    return stmt.with_for_update() if dialect == "mysql" else stmt


#: The chat path's statements, compiled once (store.prepared).
VISITOR_AND_QUEUE = Prepared(_visitor_and_queue)
ADD_CHAT = Prepared(lambda _d: insert(t.chats).values(**{name: bindparam(name) for name in (
    "visiter_id", "service_id", "business_id", "content", "direction", "state", "msg_type",
    "timestamp")}))
NOTE_ACTIVE = Prepared(lambda d: upsert(
    d, t.service_load, dict(service_id=bindparam("service_id"),
                            last_active_ms=bindparam("now")),
    ["service_id"], [("last_active_ms", bindparam("now"))]))

_VISITOR_FIELDS = ("visiter_name", "channel", "avatar", "ip", "from_url")
#: A visit: insert the visitor or refresh its fields (`upsert_visiter_and_queue`).
VISITOR_UPSERT = Prepared(lambda d: upsert(
    d, t.visiter, {name: bindparam(name) for name in (
        "visiter_id", "business_id", *_VISITOR_FIELDS)},
    ["visiter_id", "business_id"],
    [*((name, bindparam(name)) for name in _VISITOR_FIELDS),
     ("timestamp", func.current_timestamp())]))
VISITOR_ROW = Prepared(lambda _d: select(t.visiter).where(and_(
    t.visiter.c.visiter_id == bindparam("visiter_id"),
    t.visiter.c.business_id == bindparam("business_id"))))
QUEUE_ROW = Prepared(lambda _d: select(t.queue).where(and_(
    t.queue.c.visiter_id == bindparam("visiter_id"),
    t.queue.c.business_id == bindparam("business_id"))))


def _online_with_load(_dialect: str) -> Any:
    sl, st = t.service_load, t.service_status
    load = (select(func.count()).select_from(t.queue).where(and_(
        t.queue.c.service_id == t.service.c.service_id,
        t.queue.c.state == "normal")).scalar_subquery())
    return (select(t.service.c.service_id, load.label("load"),
                   func.coalesce(sl.c.last_assigned_ms, 0).label("assigned"),
                   func.coalesce(sl.c.last_active_ms, 0).label("active"),
                   st.c.status.label("status"))
            .select_from(t.service.outerjoin(sl, sl.c.service_id == t.service.c.service_id)
                         .outerjoin(st, st.c.service_id == t.service.c.service_id))
            .where(and_(t.service.c.business_id == bindparam("business_id"),
                        t.service.c.state == "online"))
            .order_by(t.service.c.service_id))


ONLINE_WITH_LOAD = Prepared(_online_with_load)


def _queue_key() -> Any:
    return and_(t.queue.c.visiter_id == bindparam("visiter_id"),
                t.queue.c.business_id == bindparam("business_id"))


#: `put_queue`: an existing row to `service_id`, normal; a missing one inserted (or, when a
#: second tab inserted it meanwhile, set the same way).
QUEUE_ASSIGN = Prepared(lambda _d: update(t.queue).where(_queue_key()).values(
    service_id=bindparam("service_id"), state="normal", timestamp=func.current_timestamp()))
QUEUE_INSERT = Prepared(lambda d: upsert(
    d, t.queue, dict(visiter_id=bindparam("visiter_id"), business_id=bindparam("business_id"),
                     service_id=bindparam("service_id"), state="normal"),
    ["visiter_id", "business_id"], [("service_id", bindparam("service_id")),
                                    ("state", "normal")]))
#: How many wait before a waiting visitor's row (`waiting_position`).
WAITING_AHEAD = Prepared(lambda _d: select(func.count().label("n")).select_from(t.queue).where(
    and_(t.queue.c.business_id == bindparam("business_id"), t.queue.c.service_id == 0,
         t.queue.c.state == "normal", t.queue.c.qid < bindparam("qid"))))


def _card_extras(_dialect: str) -> Any:
    s, st = t.sentence, t.service_status
    greeting = select(s.c.content).where(and_(
        s.c.service_id == bindparam("service_id"), s.c.state == "using")
    ).limit(1).scalar_subquery()
    status = select(st.c.status).where(
        st.c.service_id == bindparam("service_id")).scalar_subquery()
    return select(greeting.label("greeting"), status.label("status"))


CARD_EXTRAS = Prepared(_card_extras)


def _note_activity(assigned: bool, active: bool) -> Prepared:
    """`note_service_activity`'s one statement (insert or update `wolive_service_load`)."""
    def build(dialect: str) -> Any:
        fresh: dict[str, Any] = {name: bindparam("now") for name, given in (
            ("last_assigned_ms", assigned), ("last_active_ms", active)) if given}
        return upsert(dialect, t.service_load,
                      dict(service_id=bindparam("service_id"), **fresh),
                      ["service_id"], list(fresh.items()))
    return Prepared(build)


#: By (assigned, active); (False, True) is `NOTE_ACTIVE`'s statement.
NOTE_ACTIVITY = {(True, False): _note_activity(True, False),
                 (True, True): _note_activity(True, True)}

#: The row cache's reads (`get_service`, `get_business`) on a miss.
SERVICE_BY_ID = Prepared(lambda _d: select(t.service).where(
    t.service.c.service_id == bindparam("service_id")))
BUSINESS_BY_ID = Prepared(lambda _d: select(t.business).where(
    t.business.c.business_id == bindparam("business_id")))


@dataclass(frozen=True)
class Conversation:
    """A row of an agent's conversation list: the queue row, the visitor, the last message."""

    visiter_id: str
    business_id: str
    service_id: int
    state: str
    visiter_name: str
    avatar: str
    channel: str
    online: bool
    last_content: str
    last_timestamp: int
    unread: int
    from_url: str = ""
    #: `wolive_queue.timestamp` ("YYYY-MM-DD HH:MM:SS", UTC): when it was queued/assigned.
    queued_at: str = ""
    #: The last message's `msg_type` (text, image, file, system).
    last_msg_type: str = "text"
    #: The conversation's newest cid (0: no message yet): what `unread` and `last_content`
    #: are as of, so a client can merge the live messages it heard meanwhile.
    last_cid: int = 0

    def as_dict(self) -> Row:
        return self.__dict__.copy()


class Store(AgentStatusStore, AgentStore, ContentStore, HistoryStore, WaitingStore,
            WechatStore, WorkbenchStore, QuickReplyStore, RatingStore, IdentityStore, PresenceStore,
            ReportStore, StoreBase):
    """The repository. Build with `await Store.open(url)`; close with `await store.close()`.

    Areas of the product add their SQL as mixins (subclasses of `StoreBase` in their own
    module of this package) listed in this class's bases.
    """

    # ---- life -------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, base_dir: str = ".", migrate: bool = True,
                   pool_size: int | None = None, max_overflow: int | None = None,
                   pool_timeout: float | None = None,
                   row_cache_s: float = DEFAULT_TTL_S) -> Store:
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

    # ---- install and agents ------------------------------------------------------------

    async def has_super_manager(self) -> bool:
        row = await self._fetch_one(
            select(t.service.c.service_id).where(t.service.c.level == "super_manager").limit(1))
        return row is not None

    async def install(self, business_id: str, user_name: str, nick_name: str,
                      password_hash: str, distribution_rule: str = "auto") -> Row:
        """Create the first business and its super_manager in one transaction.

        Raises `Conflict` when a super_manager already exists (the installer runs once).
        Returns the new agent row.
        """
        async with self.engine.begin() as conn:
            if self.dialect == "mysql":
                # Serialise concurrent installers on MySQL (SQLite's single writer already
                # does): a named lock, since locking the empty table's gap let two installers
                # on two nodes deadlock on their inserts.
                await conn.execute(text(
                    "SELECT GET_LOCK(CONCAT('wolive_install:', DATABASE()), 30)"))
            try:
                return await self._install(conn, business_id, user_name, nick_name,
                                           password_hash, distribution_rule)
            finally:
                if self.dialect == "mysql":
                    await conn.execute(text(
                        "SELECT RELEASE_LOCK(CONCAT('wolive_install:', DATABASE()))"))

    async def _install(self, conn: Any, business_id: str, user_name: str, nick_name: str,
                       password_hash: str, distribution_rule: str) -> Row:
        """`install`'s transaction, once it holds the installer's lock."""
        exists = await self._one(conn, select(t.service.c.service_id).where(
            t.service.c.level == "super_manager").limit(1))
        if exists:
            raise Conflict("already installed")
        have_business = await self._one(conn, select(t.business.c.wid).where(
            t.business.c.business_id == business_id))
        if not have_business:
            await conn.execute(insert(t.business).values(
                business_id=business_id, distribution_rule=distribution_rule))
        try:
            res = await conn.execute(insert(t.service).values(
                user_name=user_name, nick_name=nick_name, password=password_hash,
                business_id=business_id, level="super_manager", parent_id=0,
                state="offline"))
        except IntegrityError as exc:
            raise Conflict("user_name taken") from exc
        sid = self._inserted_id(res)
        return await self._one(conn, select(t.service).where(
            t.service.c.service_id == sid)) or {}

    async def add_service(self, business_id: str, user_name: str, nick_name: str,
                          password_hash: str, level: str = "service", parent_id: int = 0,
                          avatar: str | None = None) -> Row:
        """Add an agent. Raises `Conflict` when `user_name` is taken. Returns the row."""
        values: Row = dict(user_name=user_name, nick_name=nick_name, password=password_hash,
                           business_id=business_id, level=level, parent_id=parent_id)
        if avatar:
            values["avatar"] = avatar
        async with self.engine.begin() as conn:
            try:
                res = await conn.execute(insert(t.service).values(**values))
            except IntegrityError as exc:
                raise Conflict("user_name taken") from exc
            sid = self._inserted_id(res)
            return await self._one(conn, select(t.service).where(
                t.service.c.service_id == sid)) or {}

    async def get_service(self, service_id: int) -> Row:
        """The agent's `wolive_service` row (from the row cache, `store.rowcache`). Raises
        `NotFound`."""
        return await self._cached_row("wolive_service", service_id, SERVICE_BY_ID, "agent",
                                      service_id=service_id)

    async def find_service_by_name(self, user_name: str) -> Row | None:
        """The agent named `user_name`, ignoring case as MariaDB's collation does (SQLite:
        NOCASE, the collation of migration 10's unique index); None when there is none."""
        column = t.service.c.user_name
        match = (column.collate("NOCASE") == user_name if self.dialect == "sqlite"
                 else column == user_name)
        return await self._fetch_one(select(t.service).where(match))

    async def set_service_password(self, service_id: int, password_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(t.service).where(t.service.c.service_id == service_id)
                               .values(password=password_hash))

    async def set_service_state(self, service_id: int, state: str) -> bool:
        """Write `wolive_service.state`; True when the row changed."""
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.service).where(and_(
                t.service.c.service_id == service_id, t.service.c.state != state))
                .values(state=state))
            return bool(res.rowcount)

    async def reset_presence(self) -> list[int]:
        """Mark everyone offline: run at start-up, when no socket can be open yet. Returns
        the `service_id`s of the agents that were online (whose consoles should come
        back, see `PresenceTracker.expect_back`)."""
        async with self.engine.begin() as conn:
            were = (await conn.execute(select(t.service.c.service_id).where(
                t.service.c.state == "online").order_by(t.service.c.service_id))).scalars().all()
            await conn.execute(update(t.service).where(t.service.c.state == "online")
                               .values(state="offline"))
            await conn.execute(update(t.visiter).where(t.visiter.c.state == "online")
                               .values(state="offline"))
        return [int(sid) for sid in were]

    async def online_services_with_load(self, business_id: str) -> list[Row]:
        """The business's online agents, by `service_id`: `[{service_id, load,
        idle_since_ms, away}]`. `load` = its open (`normal`) conversations in `wolive_queue`;
        `idle_since_ms` = the later of its last assignment and last reply (ms since the
        epoch, 0 = never; `wolive_service_load`); `away`: the agent set itself away
        (`wolive_service_status`), so the auto rule gives it nobody new."""
        async with self._reading() as conn:
            rows = (await self._run(conn, ONLINE_WITH_LOAD, business_id=business_id)).rows
        return [{"service_id": r["service_id"], "load": int(r["load"] or 0),
                 "idle_since_ms": max(int(r["assigned"]), int(r["active"])),
                 "away": r["status"] == "away"} for r in rows]

    async def note_service_activity(self, service_id: int, assigned: bool = False,
                                    active: bool = False, at_ms: int | None = None) -> None:
        """Record that the agent was just given a visitor (`assigned`) and/or just replied
        (`active`), at `at_ms` (default now, ms since the epoch)."""
        now = int(at_ms if at_ms is not None else time.time() * 1000)
        values: Row = {}
        if assigned:
            values["last_assigned_ms"] = now
        if active:
            values["last_active_ms"] = now
        if not values:
            return
        prepared = NOTE_ACTIVE if not assigned else NOTE_ACTIVITY[True, active]
        async with self._writing() as conn:
            await self._run(conn, prepared, service_id=service_id, now=now)

    # ---- businesses ---------------------------------------------------------------------

    async def get_business(self, business_id: str) -> Row:
        """The `wolive_business` row (from the row cache, `store.rowcache`). Raises
        `NotFound`."""
        return await self._cached_row("wolive_business", business_id, BUSINESS_BY_ID,
                                      "business", business_id=business_id)

    async def add_business(self, business_id: str, distribution_rule: str = "auto") -> Row:
        async with self.engine.begin() as conn:
            try:
                await conn.execute(insert(t.business).values(
                    business_id=business_id, distribution_rule=distribution_rule))
            except IntegrityError as exc:
                raise Conflict("business exists") from exc
        return await self.get_business(business_id)

    # ---- visitors -----------------------------------------------------------------------

    async def upsert_visiter(self, visiter_id: str, business_id: str, visiter_name: str,
                             channel: str, avatar: str, ip: str, from_url: str) -> Row:
        """Record a visit: insert the visitor or refresh its name, channel, avatar, IP, page
        and `timestamp` (its `state` and `vid` stay). Returns the `wolive_visiter` row.

        One statement (`store.upsert`), so concurrent first visits of different visitors
        cannot deadlock and two tabs of one visitor cannot both insert."""
        return (await self.upsert_visiter_and_queue(
            visiter_id, business_id, visiter_name, channel, avatar, ip, from_url,
            queue=False))[0]

    async def upsert_visiter_and_queue(self, visiter_id: str, business_id: str,
                                       visiter_name: str, channel: str, avatar: str, ip: str,
                                       from_url: str, queue: bool = True
                                       ) -> tuple[Row, Row | None]:
        """`upsert_visiter`, and in the same transaction the visitor's `wolive_queue` row
        (`get_queue`; None when never queued, or when `queue` is False)."""
        key = dict(visiter_id=visiter_id, business_id=business_id)
        async with self._writing() as conn:
            await self._run(conn, VISITOR_UPSERT, **key, visiter_name=visiter_name,
                            channel=channel, avatar=avatar, ip=ip, from_url=from_url[:255])
            rows = (await self._run(conn, VISITOR_ROW, **key)).rows
            queued = (await self._run(conn, QUEUE_ROW, **key)).rows if queue else []
        return (rows[0] if rows else {}), (queued[0] if queued else None)

    async def get_visiter(self, visiter_id: str, business_id: str) -> Row:
        """Raises `NotFound`."""
        row = await self._fetch_one(select(t.visiter).where(and_(
            t.visiter.c.visiter_id == visiter_id, t.visiter.c.business_id == business_id)))
        if row is None:
            raise NotFound(f"visitor {visiter_id}")
        return row

    async def find_visiter_by_channel(self, channel: str) -> Row | None:
        return await self._fetch_one(select(t.visiter).where(t.visiter.c.channel == channel))

    async def set_visiter_state(self, channel: str, state: str) -> Row | None:
        """Write `wolive_visiter.state` by channel; returns the visitor (None if unknown)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(t.visiter).where(t.visiter.c.channel == channel)
                               .values(state=state))
            return await self._one(conn, select(t.visiter).where(t.visiter.c.channel == channel))

    # ---- queue (who talks to whom) -----------------------------------------------------------

    async def get_queue(self, visiter_id: str, business_id: str) -> Row | None:
        async with self._reading() as conn:
            rows = (await self._run(conn, QUEUE_ROW, visiter_id=visiter_id,
                                    business_id=business_id)).rows
        return rows[0] if rows else None

    async def put_queue(self, visiter_id: str, business_id: str, service_id: int) -> Row:
        """Assign the visitor to `service_id` (0 = waiting to be claimed), state normal.

        A blacklisted visitor stays blacklisted: raises `Conflict`.
        """
        key = dict(visiter_id=visiter_id, business_id=business_id)
        async with self._writing() as conn:
            rows = (await self._run(conn, QUEUE_ROW, **key)).rows
            if rows and rows[0]["state"] == "in_black_list":
                raise Conflict("blacklisted")
            await self._run(conn, QUEUE_ASSIGN if rows else QUEUE_INSERT, **key,
                            service_id=service_id)
            await track(self, conn, visiter_id, business_id, service_id, "normal")
            rows = (await self._run(conn, QUEUE_ROW, **key)).rows
        return rows[0] if rows else {}

    async def enqueue(self, visiter_id: str, business_id: str) -> Row:
        """Put the visitor at the back of the business's waiting list (`service_id = 0`,
        `normal`) and return its row; a visitor already waiting keeps its place. The row is
        made anew, so its `qid` (the order of the list) says when it joined. A blacklisted
        visitor stays blacklisted: raises `Conflict`."""
        q = t.queue
        key = and_(q.c.visiter_id == visiter_id, q.c.business_id == business_id)
        async with self._writing() as conn:
            row = await self._one(conn, select(q).where(key))
            if row and row["state"] == "in_black_list":
                raise Conflict("blacklisted")
            if row and row["state"] == "normal" and row["service_id"] == 0:
                return row
            if row:
                await conn.execute(delete(q).where(and_(key, q.c.qid == row["qid"])))
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(q).values(
                        visiter_id=visiter_id, business_id=business_id, service_id=0,
                        state="normal"))
            except IntegrityError:
                pass  # a second tab queued it first: that row is the one
            await track(self, conn, visiter_id, business_id, 0, "normal")
            return await self._one(conn, select(q).where(key)) or {}

    async def waiting_position(self, visiter_id: str, business_id: str) -> int:
        """1-based place of a waiting visitor among the business's waiting visitors (in
        the order they joined: `qid`, see `enqueue`); 0 when it is not waiting."""
        me = await self.get_queue(visiter_id, business_id)
        if me is None or me["service_id"] != 0 or me["state"] != "normal":
            return 0
        async with self._reading() as conn:
            rows = (await self._run(conn, WAITING_AHEAD, business_id=business_id,
                                    qid=me["qid"])).rows
        return int(rows[0]["n"] or 0) + 1 if rows else 1

    async def claim_waiting(self, visiter_id: str, business_id: str, service_id: int) -> bool:
        """Give a waiting visitor (`service_id = 0`, `normal`) to `service_id`, atomically:
        one conditional UPDATE, so of any number of concurrent claimers (any process, SQLite
        or MariaDB, even MyISAM) exactly one sees True."""
        q = t.queue
        async with self._writing() as conn:
            res = await conn.execute(update(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == 0, q.c.state == "normal"))
                .values(service_id=service_id, timestamp=func.current_timestamp()))
            if res.rowcount == 1:
                await track(self, conn, visiter_id, business_id, service_id, "normal")
            return res.rowcount == 1

    async def change_queue(self, visiter_id: str, business_id: str, expect_service_id: int,
                           expect_state: str, service_id: int | None = None,
                           state: str | None = None) -> bool:
        """Compare-and-set on a queue row: write `service_id` / `state` only while the row
        still has `expect_service_id` and `expect_state`. True when it was written (False:
        someone changed it meanwhile, or there is no such row)."""
        q = t.queue
        values: Row = {"timestamp": func.current_timestamp()}
        if service_id is not None:
            values["service_id"] = service_id
        if state is not None:
            values["state"] = state
        async with self.engine.begin() as conn:
            res = await conn.execute(update(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == expect_service_id, q.c.state == expect_state))
                .values(**values))
            if res.rowcount == 1 and (service_id is not None or state != expect_state):
                # The conversation starts, moves or ends with the queue row (store.reports).
                await track(self, conn, visiter_id, business_id,
                            expect_service_id if service_id is None else service_id,
                            state or expect_state)
            return res.rowcount == 1

    async def conversations(self, service_id: int, limit: int = 200) -> list[Conversation]:
        """The agent's open conversations, newest activity first, with unread counts."""
        q = t.queue
        return await self._conversations(
            and_(q.c.service_id == service_id, q.c.state == "normal"), "activity", limit)

    async def waiting(self, business_id: str, limit: int = 200) -> list[Conversation]:
        """The business's visitors waiting to be claimed (`service_id = 0`, `normal`),
        first come first (`qid`): the order of `waiting_position`."""
        q = t.queue
        return await self._conversations(
            and_(q.c.business_id == business_id, q.c.service_id == 0, q.c.state == "normal"),
            "oldest", limit)

    async def blacklisted(self, business_id: str, service_id: int | None = None,
                          limit: int = 500) -> list[Conversation]:
        """The business's blacklisted visitors (`in_black_list`), latest first; only those
        of `service_id` when given."""
        q = t.queue
        cond = [q.c.business_id == business_id, q.c.state == "in_black_list"]
        if service_id is not None:
            cond.append(q.c.service_id == service_id)
        return await self._conversations(and_(*cond), "newest", limit)

    async def conversation(self, visiter_id: str, business_id: str) -> Conversation | None:
        """One visitor's queue row as a conversation-list entry; None without a row."""
        q = t.queue
        rows = await self._conversations(
            and_(q.c.visiter_id == visiter_id, q.c.business_id == business_id), "newest", 1)
        return rows[0] if rows else None

    async def _conversations(self, where: Any, order: str, limit: int) -> list[Conversation]:
        """Queue rows matching `where`, joined with the visitor and its last message.
        `order`: "activity" (newest message first), "oldest" (`qid`: the waiting list's
        order), "newest" (latest queue change first)."""
        c, v, q = t.chats, t.visiter, t.queue
        # Both subqueries run once per queue row: MariaDB is told to use the conversation
        # index, since with stale statistics (right after a bulk import) it picked the
        # business_id index and scanned every message of the business per row (minutes for
        # 1,000 conversations of 100,000 messages; bench/ui_bench.py).
        last_cid = (select(func.max(c.c.cid)).where(and_(
            c.c.visiter_id == q.c.visiter_id, c.c.business_id == q.c.business_id))
            .with_hint(c, CONVERSATION_INDEX_HINT, "mysql").scalar_subquery())
        unread = (select(func.count()).select_from(c).where(and_(
            c.c.visiter_id == q.c.visiter_id, c.c.business_id == q.c.business_id,
            c.c.direction == "to_service", c.c.state == "unread"))
            .with_hint(c, CONVERSATION_INDEX_HINT, "mysql").scalar_subquery())
        if order == "activity":
            order_by: list[Any] = [case((last_cid.is_(None), 0), else_=1).desc(),
                                   last_cid.desc(), q.c.qid.desc()]
        elif order == "oldest":
            order_by = [q.c.qid.asc()]
        else:
            order_by = [q.c.timestamp.desc(), q.c.qid.desc()]
        stmt = (select(q.c.visiter_id, q.c.business_id, q.c.service_id, q.c.state,
                       q.c.timestamp.label("queued_at"),
                       v.c.visiter_name, v.c.avatar, v.c.channel, v.c.from_url,
                       v.c.state.label("vstate"),
                       last_cid.label("last_cid"), unread.label("unread"))
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(where)
                .order_by(*order_by)
                .limit(limit))
        async with self.read_engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
            cids = [r["last_cid"] for r in rows if r["last_cid"]]
            last: dict[int, Row] = {}
            if cids:
                for found in (await conn.execute(select(c.c.cid, c.c.content, c.c.timestamp,
                                                        c.c.msg_type)
                                                 .where(c.c.cid.in_(cids)))).mappings():
                    last[found["cid"]] = dict(found)
        out = []
        for r in rows:
            m = last.get(r["last_cid"] or 0, {})
            out.append(Conversation(
                visiter_id=r["visiter_id"], business_id=r["business_id"],
                service_id=r["service_id"], state=r["state"], visiter_name=r["visiter_name"],
                avatar=r["avatar"], channel=r["channel"], online=r["vstate"] == "online",
                last_content=m.get("content", ""), last_timestamp=m.get("timestamp", 0),
                unread=int(r["unread"] or 0), from_url=r["from_url"],
                queued_at=str(r["queued_at"] or ""), last_cid=int(r["last_cid"] or 0),
                last_msg_type=m.get("msg_type") or "text"))
        return out

    async def unread_count(self, visiter_id: str, business_id: str,
                           direction: str = "to_service") -> int:
        """Unread messages of one conversation going `direction` (`wolive_chats.state`)."""
        c = t.chats
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(c).where(and_(
                c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction, c.c.state == "unread")))).scalar() or 0)

    # ---- messages -----------------------------------------------------------------------

    async def add_chat(self, visiter_id: str, service_id: int, business_id: str, content: str,
                       direction: str, timestamp: int | None = None,
                       msg_type: str = "text", state: str = "unread") -> Row:
        """Store one message (committed on return). Returns the row with its `cid`.

        `msg_type` is "text" (content is plain text), "image" or "file" (content is the
        stored file's URL path; a file's original name travels after a newline), "system"
        (a line the server writes: JSON `{key, vars}`, see `schema.CHAT_MSG_TYPES`) or
        "note" (such a line for the agents only)."""
        values = dict(visiter_id=visiter_id, service_id=service_id, business_id=business_id,
                      content=content, direction=direction, state=state,
                      msg_type=msg_type,
                      timestamp=int(timestamp if timestamp is not None else time.time()))
        async with self._writing() as conn:
            ran = await self._run(conn, ADD_CHAT, **values)
            if ran.lastrowid is None:
                raise RuntimeError("INSERT returned no primary key")
            values["cid"] = int(ran.lastrowid)
        return values

    async def add_message(self, visiter_id: str, business_id: str, content: str,
                          direction: str, decide: Callable[[Row | None, Row | None],
                                                           int | None],
                          msg_type: str = "text", active_service_id: int = 0
                          ) -> tuple[Row | None, Row | None, Row | None]:
        """A message of the chat path in one transaction: read the visitor
        (`wolive_visiter`) and its queue row together (one statement; on MySQL/MariaDB with
        `FOR UPDATE`, so a blacklisting cannot slip in between), let `decide(visitor,
        queue)` (None when absent) say to which agent the message belongs (its
        `service_id`), then store it as `add_chat` does and, with `active_service_id`, note
        that agent's reply (`note_service_activity(active=True)`); all committed together.

        `decide` returns None to write nothing, or raises (e.g. a refusal) to roll back.
        Returns `(visitor, queue, chat)`: `chat` as `add_chat` returns it, None when
        nothing was written."""
        async with self._writing() as conn:
            found = (await self._run(conn, VISITOR_AND_QUEUE, visiter_id=visiter_id,
                                     business_id=business_id)).rows
            row = found[0] if found else None
            visitor = queue = None
            if row is not None:
                visitor = {k: val for k, val in row.items() if not k.startswith("q_")}
                if row["q_qid"] is not None:
                    queue = {"qid": row["q_qid"], "visiter_id": visiter_id,
                             "service_id": row["q_service_id"], "business_id": business_id,
                             "state": row["q_state"], "timestamp": row["q_timestamp"]}
            service_id = decide(visitor, queue)
            if service_id is None:
                return visitor, queue, None
            values = dict(visiter_id=visiter_id, service_id=service_id,
                          business_id=business_id, content=content, direction=direction,
                          state="unread", msg_type=msg_type, timestamp=int(time.time()))
            ran = await self._run(conn, ADD_CHAT, **values)
            if ran.lastrowid is None:
                raise RuntimeError("INSERT returned no primary key")
            values["cid"] = int(ran.lastrowid)
            if active_service_id:
                await self._run(conn, NOTE_ACTIVE, service_id=active_service_id,
                                now=int(time.time() * 1000))
                # The conversation's first agent reply (store.reports), once.
                await self._run(conn, FIRST_REPLY, visiter_id=visiter_id,
                                business_id=business_id, now=values["timestamp"])
        return visitor, queue, values

    async def chats_of(self, visiter_id: str, business_id: str, before_cid: int = 0,
                       limit: int = 50, after_cid: int = -1,
                       agent_lines: bool = True) -> list[Row]:
        """A conversation's messages, oldest first; the `limit` newest before `before_cid`,
        or with `after_cid` (0 or more: a page's cursor, 0 when it has seen nothing) the
        `limit` oldest after it (what a reconnecting page missed); -1: no cursor.
        `agent_lines=False` (the visitor's reads): without the agents-only "note" lines."""
        c = t.chats
        cond = [c.c.visiter_id == visiter_id, c.c.business_id == business_id]
        if not agent_lines:
            cond.append(c.c.msg_type != "note")
        if before_cid:
            cond.append(c.c.cid < before_cid)
        if after_cid >= 0:
            cond.append(c.c.cid > after_cid)
            return await self._fetch_all(select(c).where(and_(*cond))
                                         .order_by(c.c.cid.asc()).limit(limit))
        rows = await self._fetch_all(select(c).where(and_(*cond))
                                     .order_by(c.c.cid.desc()).limit(limit))
        rows.reverse()
        return rows

    async def mark_read(self, visiter_id: str, business_id: str, direction: str) -> int:
        """Mark the conversation's unread messages going `direction` read; returns how many."""
        c = t.chats
        async with self.engine.begin() as conn:
            res = await conn.execute(update(c).where(and_(
                c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction, c.c.state == "unread")).values(state="readed"))
            return int(res.rowcount or 0)

    async def card_extras(self, service_id: int) -> tuple[str, str]:
        """The agent's active greeting (`active_greeting`; "" when none) and its status
        (`service_status`: `available` or `away`) in one statement."""
        async with self._reading() as conn:
            rows = (await self._run(conn, CARD_EXTRAS, service_id=service_id)).rows
        row = rows[0] if rows else {}
        return str(row.get("greeting") or ""), str(row.get("status") or "available")

    async def active_greeting(self, service_id: int) -> str:
        row = await self._fetch_one(select(t.sentence.c.content).where(and_(
            t.sentence.c.service_id == service_id, t.sentence.c.state == "using")))
        return row["content"] if row else ""

