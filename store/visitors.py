"""SQL for visitors (`wolive_visiter`, `wolive_visiter_info`): recording a visit, finding a
visitor by id or channel, and the visitor card's profile.

`wolive_visiter` is WoLive's table (one row per visitor of a business, its channel and
online state); `wolive_visiter_info` is ours: the profile an agent reads and edits in the
console (name / phone / note, User-Agent and referrer, visits). Online / offline state
writes are `store.presence`'s; who owns a visitor id is `store.identity`'s.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, update

from . import schema as t
from .base import Row, StoreBase
from .conversations import QUEUE_ROW
from .errors import NotFound
from .prepared import Prepared
from .upsert import upsert

#: A page load this long (seconds) after the previous one counts as a new visit.
VISIT_GAP_S = 30 * 60
#: The fields an agent may edit, with their longest length.
EDITABLE = {"name": 255, "tel": 64, "note": 2000}


def _note_visit(user_agent: bool, referrer: bool) -> Prepared:
    """`note_visit`'s one statement (no read first, no savepoint), with or without a new
    user agent and referrer. `visits` is set before `last_visit`: MySQL's assignments see
    the values set before them."""
    def build(dialect: str) -> Any:
        vi = t.visiter_info
        now: Any = bindparam("now")
        fresh: dict[str, Any] = {name: bindparam(name) for name, given in (
            ("user_agent", user_agent), ("referrer", referrer)) if given}
        gap = case((now - func.coalesce(vi.c.last_visit, 0) > VISIT_GAP_S, 1), else_=0)
        return upsert(
            dialect, vi,
            dict(visiter_id=bindparam("visiter_id"), business_id=bindparam("business_id"),
                 first_visit=now, last_visit=now, visits=1, note="", **fresh),
            ["visiter_id", "business_id"],
            [("visits", vi.c.visits + gap), ("last_visit", now), *fresh.items()])
    return Prepared(build)


#: `note_visit`'s statement by (user agent given, referrer given), compiled once.
NOTE_VISIT = {(ua, ref): _note_visit(ua, ref) for ua in (False, True) for ref in (False, True)}

#: The visitor's fields a visit refreshes.
_VISITOR_FIELDS = ("visiter_name", "channel", "avatar", "ip", "from_url")
#: A visit: insert the visitor or refresh its fields (`upsert_visiter_and_queue`).
VISITOR_UPSERT = Prepared(lambda d: upsert(
    d, t.visiter, {name: bindparam(name) for name in (
        "visiter_id", "business_id", *_VISITOR_FIELDS)},
    ["visiter_id", "business_id"],
    [*((name, bindparam(name)) for name in _VISITOR_FIELDS),
     ("timestamp", func.current_timestamp())]))
#: A visitor's row by (`visiter_id`, `business_id`).
VISITOR_ROW = Prepared(lambda _d: select(t.visiter).where(and_(
    t.visiter.c.visiter_id == bindparam("visiter_id"),
    t.visiter.c.business_id == bindparam("business_id"))))


class VisitorStore(StoreBase):
    """Visitors' rows and profiles (see the module docstring)."""

    # ---- wolive_visiter ----------------------------------------------------------------

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

    # ---- the profile (wolive_visiter_info) ----------------------------------------------

    async def note_visit(self, visiter_id: str, business_id: str, user_agent: str,
                         referrer: str, now: int | None = None) -> None:
        """Record the chat window opening: the UA and referrer (when given), last visit, and
        one more visit when the last was over `VISIT_GAP_S` ago."""
        now = int(now if now is not None else time.time())
        values: dict[str, Any] = dict(visiter_id=visiter_id, business_id=business_id, now=now)
        if user_agent:
            values["user_agent"] = user_agent[:t.MAX_USER_AGENT]
        if referrer:
            values["referrer"] = referrer[:t.MAX_REFERRER]
        async with self._writing() as conn:
            await self._run(conn, NOTE_VISIT[bool(user_agent), bool(referrer)], **values)

    async def visitor_info(self, visiter_id: str, business_id: str) -> Row | None:
        return await self._fetch_one(select(t.visiter_info).where(and_(
            t.visiter_info.c.visiter_id == visiter_id,
            t.visiter_info.c.business_id == business_id)))

    async def set_visitor_info(self, visiter_id: str, business_id: str,
                               **values: str) -> Row:
        """Write the agent-editable fields (`EDITABLE`); creates the row when missing."""
        vi = t.visiter_info
        values = {k: v for k, v in values.items() if k in EDITABLE}
        key = and_(vi.c.visiter_id == visiter_id, vi.c.business_id == business_id)
        async with self.engine.begin() as conn:
            res = await conn.execute(update(vi).where(key).values(**values))
            if not res.rowcount and not await self._one(conn, select(vi.c.id).where(key)):
                base = {"note": ""}
                base.update(values)
                await conn.execute(insert(vi).values(visiter_id=visiter_id,
                                                     business_id=business_id, **base))
            return await self._one(conn, select(vi).where(key)) or {}
