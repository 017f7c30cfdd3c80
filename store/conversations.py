"""SQL for conversations and the waiting line (`wolive_queue`: who talks to whom).

A visitor's queue row says whose conversation it is: `service_id` its agent, or 0 while it
waits to be claimed, and `state` `normal` (open), `complete` or `in_black_list`. Here: putting
a visitor in the line or with an agent, claiming and transferring (compare-and-set writes, so
of concurrent claimers exactly one wins), the conversation lists of the console (`Conversation`),
and the business's assignment lock (`assignment`).

A waiting visitor is a `wolive_queue` row with `service_id = 0` and `state = normal`, in the
order the rows were made (`qid`). A *stranded* visitor is one whose open conversation
(`normal`) belongs to an agent who is offline while the visitor's window is open
(`wolive_visiter.state` online): its agent left and nobody could take over then. It is served
like a waiting visitor when someone can (`realtime.chat.handover.Handover.assign_waiting`).

Every change of a queue row that starts, moves or ends a conversation also writes the
reports' row in the same transaction (`store.reports.track`).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import Conflict
from .prepared import Prepared
from .reports import track
from .upsert import upsert

#: MySQL index hint for per-conversation lookups in `wolive_chats` (schema migration 5).
CONVERSATION_INDEX_HINT = "FORCE INDEX (chats_conversation)"

#: A visitor's queue row (`get_queue`, `upsert_visiter_and_queue`).
QUEUE_ROW = Prepared(lambda _d: select(t.queue).where(and_(
    t.queue.c.visiter_id == bindparam("visiter_id"),
    t.queue.c.business_id == bindparam("business_id"))))


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
#: The business's waiting visitors, first come first (`unserved`), compiled once.
WAITING = Prepared(lambda _d: select(t.queue.c.qid, t.queue.c.visiter_id).where(and_(
    t.queue.c.business_id == bindparam("business_id"), t.queue.c.service_id == 0,
    t.queue.c.state == "normal")).order_by(t.queue.c.qid).limit(bindparam("limit")))


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


class ConversationStore(StoreBase):
    """Queue rows: the waiting line, claims and transfers, the conversation lists."""

    # ---- the queue row -----------------------------------------------------------------

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
        # business_id index and scanned every message of the business per row
        # (docs/performance.md).
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

    # ---- the waiting line and the assignment lock ---------------------------------------

    @asynccontextmanager
    async def assignment(self, business_id: str) -> AsyncIterator[None]:
        """One assignment decision for `business_id` at a time, across every process on
        the database: a transaction that holds the business's lock until the block ends,
        then commits (rolls back on an exception). Inside the block, this task's store
        calls run in that transaction (`StoreBase._writing` / `_reading`), so what they
        read (who is online, their load, who waits) cannot change under them.

        MariaDB/MySQL: `SELECT ... FOR UPDATE` on the `wolive_business` row, in READ
        COMMITTED so each read sees what the previous holder committed. SQLite: the
        transaction begins IMMEDIATE (store.database), which serialises every writer of the
        file. Re-entrant within a task. Push events after the block, or inside it through
        `on_commit` (run once it committed)."""
        if self._held() is not None:
            yield
            return
        async with self.unit() as conn:
            if self.dialect == "mysql":
                await conn.execute(select(t.business.c.wid).where(
                    t.business.c.business_id == business_id).with_for_update())
            yield

    async def unserved(self, business_id: str, stranded: bool = False, limit: int = 200
                       ) -> list[tuple[str, int]]:
        """The business's open conversations nobody serves, first come first (`qid`):
        `(visiter_id, 0)` for each waiting visitor and, with `stranded`, `(visiter_id,
        service_id)` for each stranded one (module docstring; `service_id` is its offline
        agent). At most `limit` of each kind."""
        q, s, v = t.queue, t.service, t.visiter
        async with self._reading() as conn:
            rows = [(int(r["qid"]), str(r["visiter_id"]), 0) for r in (await self._run(
                conn, WAITING, business_id=business_id, limit=limit)).rows]
            if stranded:
                # From the business's offline agents to their open conversations: the
                # queue's `se` index, never the business's whole history.
                rows += [(int(r[0]), str(r[1]), int(r[2])) for r in await conn.execute(
                    select(q.c.qid, q.c.visiter_id, q.c.service_id)
                    .select_from(s.join(q, q.c.service_id == s.c.service_id)
                                 .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                                               v.c.business_id == q.c.business_id)))
                    .where(and_(s.c.business_id == business_id, s.c.state == "offline",
                                q.c.business_id == business_id, q.c.state == "normal",
                                v.c.state == "online"))
                    .order_by(q.c.qid).limit(limit))]
                rows.sort()
        return [(vid, sid) for _qid, vid, sid in rows]

    async def take_stranded(self, visiter_id: str, business_id: str, from_service_id: int,
                            to_service_id: int) -> bool:
        """Move a stranded conversation from its offline agent `from_service_id` to
        `to_service_id` (0: the waiting line), atomically: one conditional UPDATE that
        writes only while the conversation is still open with that agent and the agent is
        still not online. True when it was moved."""
        q, s = t.queue, t.service
        back = exists().where(and_(s.c.service_id == from_service_id, s.c.state == "online"))
        async with self._writing() as conn:
            res = await conn.execute(update(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == from_service_id, q.c.state == "normal", ~back))
                .values(service_id=to_service_id, timestamp=func.current_timestamp()))
            if res.rowcount == 1 and to_service_id:
                await track(self, conn, visiter_id, business_id, to_service_id, "normal")
            return res.rowcount == 1

    async def waiting_channels(self, business_id: str, limit: int = 200
                               ) -> list[tuple[str, str]]:
        """`(visiter_id, channel)` of the business's waiting visitors, first come first
        (the order of `waiting_position`): whom to tell their place."""
        q, v = t.queue, t.visiter
        async with self._reading() as conn:
            res = await conn.execute(
                select(q.c.visiter_id, v.c.channel)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.business_id == business_id, q.c.service_id == 0,
                            q.c.state == "normal"))
                .order_by(q.c.qid).limit(limit))
            return [(str(r[0]), str(r[1])) for r in res]

    async def waiting_visitor_channels(self, limit: int = 10000) -> list[str]:
        """The `channel` of every waiting visitor of every business (at start-up: whose
        windows must come back, see `PresenceTracker.expect_back`)."""
        q, v = t.queue, t.visiter
        async with self._reading() as conn:
            res = await conn.execute(
                select(v.c.channel)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.service_id == 0, q.c.state == "normal"))
                .order_by(q.c.qid).limit(limit))
            return [str(r[0]) for r in res]

    async def live_counts(self) -> tuple[int, int]:
        """(visitors waiting, agents online) over every business: two COUNTs on indexed
        columns, for the metrics (`realtime.metrics`)."""
        q, s = t.queue, t.service
        async with self._reading() as conn:
            waiting = (await conn.execute(select(func.count()).select_from(q).where(
                and_(q.c.service_id == 0, q.c.state == "normal")))).scalar()
            online = (await conn.execute(select(func.count()).select_from(s).where(
                s.c.state == "online"))).scalar()
        return int(waiting or 0), int(online or 0)

    async def leave_waiting(self, visiter_id: str, business_id: str,
                            missed: bool = False) -> bool:
        """Take a waiting visitor out of the line (its queue row goes; its messages stay).
        A conditional DELETE: a visitor an agent took meanwhile stays with that agent.
        Its conversation ends (store.reports; `missed`: it left a message). True when it
        was waiting."""
        q = t.queue
        async with self._writing() as conn:
            res = await conn.execute(delete(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == 0, q.c.state == "normal")))
            if res.rowcount:
                await track(self, conn, visiter_id, business_id, None, "gone", missed=missed)
            return bool(res.rowcount)
