"""SQL for agents and businesses (`wolive_service`, `wolive_business`, `wolive_service_load`):
installing, adding, finding, editing and deleting agents and businesses, and what automatic
assignment reads of the online agents (their load, when each was last busy).

No rule about who may do what lives here (that is the use cases' job: `realtime.chat.agents`,
`realtime.chat.assignment`), only the reads and the writes, each write in one committed
transaction.
Agent and business rows are read through the row cache (`store.rowcache`). Raises `Conflict`
for a taken `user_name` / `business_id` and `NotFound` for a missing row.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import Conflict, NotFound
from .prepared import Prepared
from .quick_replies import quick_reply
from .upsert import upsert

#: What may be shown of an agent: every column except the password hash.
PUBLIC_SERVICE_COLUMNS = (
    "service_id", "user_name", "nick_name", "phone", "email", "business_id", "avatar",
    "level", "parent_id", "state",
)

#: Columns of `wolive_business` a switch may change (never `wid` / `business_id`).
SWITCH_COLUMNS = ("distribution_rule", "video_state", "audio_state", "voice_state",
                  "voice_address", "state")

#: The profile columns `update_service_profile` may write (the whitelist: never the
#: level, business, parent or password).
PROFILE_COLUMNS = ("user_name", "nick_name", "phone", "email", "avatar")


#: An agent's reply (`note_service_activity(active=True)`, `store.messages.add_message`).
NOTE_ACTIVE = Prepared(lambda d: upsert(
    d, t.service_load, dict(service_id=bindparam("service_id"),
                            last_active_ms=bindparam("now")),
    ["service_id"], [("last_active_ms", bindparam("now"))]))


def _online_with_load(_dialect: str) -> Any:
    """`online_services_with_load`'s one statement."""
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


def _public_columns() -> list[Any]:
    return [t.service.c[name] for name in PUBLIC_SERVICE_COLUMNS]


class AgentStore(StoreBase):
    """Agents and businesses: install, add, find, edit, delete; online agents' load."""

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
        sid = await self._insert_service(
            conn, user_name=user_name, nick_name=nick_name, password=password_hash,
            business_id=business_id, level="super_manager", parent_id=0, state="offline")
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
            sid = await self._insert_service(conn, **values)
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

    async def services_of(self, business_id: str) -> list[Row]:
        """The business's agents (no password hash), highest level first, then by id."""
        level_rank = {"super_manager": 0, "manager": 1, "service": 2}
        rows = await self._fetch_all(
            select(*_public_columns()).where(t.service.c.business_id == business_id)
            .order_by(t.service.c.service_id))
        rows.sort(key=lambda r: (level_rank.get(r["level"], 3), r["service_id"]))
        return rows

    async def update_service_profile(self, service_id: int, values: dict[str, str]) -> Row:
        """Write the given profile columns (only `PROFILE_COLUMNS`; anything else is a
        programming error: `ValueError`). Returns the agent without its password hash.

        Raises `NotFound` (no such agent), `Conflict` ("user_name taken")."""
        bad = set(values) - set(PROFILE_COLUMNS)
        if bad:
            raise ValueError(f"not profile columns: {sorted(bad)}")
        key = t.service.c.service_id == service_id
        async with self.engine.begin() as conn:
            if await self._one(conn, select(t.service.c.service_id).where(key)) is None:
                raise NotFound(f"agent {service_id}")
            if values:
                try:
                    await conn.execute(update(t.service).where(key).values(**values))
                except IntegrityError as exc:
                    raise Conflict("user_name taken") from exc
            return await self._one(conn, select(*_public_columns()).where(key)) or {}

    async def delete_service(self, service_id: int, new_parent_id: int) -> list[Row]:
        """Delete an agent in one transaction and hand back what it held.

        - its open conversations (`wolive_queue`, state normal) go back to waiting
          (`service_id` 0); its other queue rows (complete, blacklist) keep their state but
          point at no agent, so a later agent never inherits them;
        - agents whose `parent_id` was this one get `new_parent_id`;
        - its greeting (`wolive_sentence`), WeChat links (`wolive_weixin`), own quick
          replies (`wolive_quick_reply`), status (`wolive_service_status`) and assignment
          times (`wolive_service_load`) go with it. Its id is never given again (schema,
          `_NO_REUSE`), so nothing left pointing at it (old messages, ratings) can ever
          belong to another agent.

        Returns the visitors released back to waiting: `{visiter_id, business_id,
        visiter_name, avatar, channel, from_url, state}`. Raises `NotFound`."""
        q, v = t.queue, t.visiter
        async with self.engine.begin() as conn:
            if self.dialect == "mysql":
                # Lock the agent row so a concurrent claim/assign sees it gone or not at all.
                await conn.execute(select(t.service.c.service_id).where(
                    t.service.c.service_id == service_id).with_for_update())
            gone = await conn.execute(delete(t.service).where(
                t.service.c.service_id == service_id))
            if not gone.rowcount:
                raise NotFound(f"agent {service_id}")
            released = [dict(r) for r in (await conn.execute(
                select(q.c.visiter_id, q.c.business_id, v.c.visiter_name, v.c.avatar,
                       v.c.channel, v.c.from_url, v.c.state)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.service_id == service_id, q.c.state == "normal"))
                .order_by(q.c.qid))).mappings().all()]
            await conn.execute(update(q).where(q.c.service_id == service_id)
                               .values(service_id=0))
            await conn.execute(update(t.service).where(t.service.c.parent_id == service_id)
                               .values(parent_id=new_parent_id))
            await conn.execute(delete(t.sentence).where(t.sentence.c.service_id == service_id))
            for table in (t.weixin, t.service_status, t.service_load, quick_reply):
                await conn.execute(delete(table).where(table.c.service_id == service_id))
        return released

    # ---- businesses ---------------------------------------------------------------------

    async def get_business(self, business_id: str) -> Row:
        """The `wolive_business` row (from the row cache, `store.rowcache`). Raises
        `NotFound`."""
        return await self._cached_row("wolive_business", business_id, BUSINESS_BY_ID,
                                      "business", business_id=business_id)

    async def add_business(self, business_id: str, distribution_rule: str = "auto") -> Row:
        """Add a business. Raises `Conflict` ("business exists"). Returns its row."""
        async with self.engine.begin() as conn:
            await self._insert_business(conn, business_id, distribution_rule)
        return await self.get_business(business_id)

    async def businesses(self) -> list[Row]:
        """Every business (all `wolive_business` columns) with `agents`: how many agents it
        has and `online`: how many of them are online. Ordered by `wid`."""
        s = t.service
        agents = (select(func.count()).select_from(s)
                  .where(s.c.business_id == t.business.c.business_id).scalar_subquery())
        online = (select(func.count()).select_from(s)
                  .where(and_(s.c.business_id == t.business.c.business_id,
                              s.c.state == "online")).scalar_subquery())
        rows = await self._fetch_all(
            select(t.business, agents.label("agents"), online.label("online"))
            .order_by(t.business.c.wid))
        for r in rows:
            r["agents"], r["online"] = int(r["agents"] or 0), int(r["online"] or 0)
        return rows

    async def add_business_with_manager(self, business_id: str, user_name: str,
                                        nick_name: str, password_hash: str, parent_id: int,
                                        distribution_rule: str = "auto") -> Row:
        """Create a business and its first `manager` in one transaction: both or neither.

        Returns the manager (no password hash). Raises `Conflict` ("business exists" or
        "user_name taken")."""
        # No SAVEPOINT here: with pysqlite a SAVEPOINT that opens the transaction commits on
        # release. Any IntegrityError raises out of `begin()`, which rolls everything back.
        async with self.engine.begin() as conn:
            await self._insert_business(conn, business_id, distribution_rule)
            sid = await self._insert_service(
                conn, user_name=user_name, nick_name=nick_name, password=password_hash,
                business_id=business_id, level="manager", parent_id=parent_id,
                state="offline")
            return await self._one(conn, select(*_public_columns()).where(
                t.service.c.service_id == sid)) or {}

    async def set_switches(self, business_id: str, values: dict[str, str]) -> Row:
        """Change some of `SWITCH_COLUMNS` (any other key raises `ValueError`); returns the
        business row. Raises `NotFound` for an unknown business."""
        bad = set(values) - set(SWITCH_COLUMNS)
        if bad:
            raise ValueError(f"not a switch: {sorted(bad)}")
        key = t.business.c.business_id == business_id
        async with self.engine.begin() as conn:
            if values:
                await conn.execute(update(t.business).where(key).values(**values))
            row = await self._one(conn, select(t.business).where(key))
        if row is None:
            raise NotFound(f"business {business_id}")
        return row

    # ---- the inserts ---------------------------------------------------------------------

    @staticmethod
    async def _insert_business(conn: Any, business_id: str, distribution_rule: str) -> None:
        """Insert a `wolive_business` row in `conn`'s transaction. Raises `Conflict`
        ("business exists")."""
        try:
            await conn.execute(insert(t.business).values(
                business_id=business_id, distribution_rule=distribution_rule))
        except IntegrityError as exc:
            raise Conflict("business exists") from exc

    async def _insert_service(self, conn: Any, **values: Any) -> int:
        """Insert a `wolive_service` row in `conn`'s transaction; returns its `service_id`.
        Raises `Conflict` ("user_name taken")."""
        try:
            res = await conn.execute(insert(t.service).values(**values))
        except IntegrityError as exc:
            raise Conflict("user_name taken") from exc
        return self._inserted_id(res)
