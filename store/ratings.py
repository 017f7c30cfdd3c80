"""SQL for conversation ratings: `wolive_rating` (ours, not one of WoLive's).

A visitor rates an ended conversation once: a score of 1-5 and an optional comment. Each row
names the `ended` system line (`wolive_chats.cid`, `ended_cid`) it rates; the unique key
(`visiter_id`, `business_id`, `ended_cid`) makes a second rating of the same end fail with
`Conflict`, whoever wins a race. Made by `metadata.create_all` (schema migration 7 records it).
No rule about who may rate what lives here (`realtime.chat.ratings` has them).
"""
from __future__ import annotations

import time

from sqlalchemy import (Column, Index, Integer, SmallInteger, String, Table, UniqueConstraint,
                        and_, insert, select)
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import Conflict

#: Longest rating comment (characters).
MAX_RATING_COMMENT = 500

rating = Table(
    "wolive_rating", t.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("business_id", String(100), nullable=False),
    # The agent of the rated conversation (0: the visitor was still waiting when it ended).
    Column("service_id", Integer, nullable=False, server_default="0"),
    Column("score", SmallInteger, nullable=False),
    Column("comment", String(MAX_RATING_COMMENT), nullable=False, server_default=""),
    # The `ended` system line (`wolive_chats.cid`) this rating is about.
    Column("ended_cid", Integer, nullable=False),
    # When it was given, unix seconds (as `wolive_chats.timestamp`).
    Column("timestamp", Integer, nullable=False),
    UniqueConstraint("visiter_id", "business_id", "ended_cid", name="rating_once"),
    Index("rating_service", "service_id"),
    Index("rating_business_time", "business_id", "timestamp"),
    **t.MYSQL_TABLE_OPTIONS,
)

#: What a rating looks like to callers (every column).
RATING_FIELDS = ("id", "visiter_id", "business_id", "service_id", "score", "comment",
                 "ended_cid", "timestamp")


class RatingStore(StoreBase):
    """Ratings and the `ended` lines they rate (see the module docstring)."""

    async def last_system_line(self, visiter_id: str, business_id: str,
                               content_prefix: str) -> Row | None:
        """The visitor's newest `wolive_chats` row with `msg_type` "system" whose `content`
        starts with `content_prefix` (e.g. the JSON of a key), or None."""
        c = t.chats
        prefix = (content_prefix.replace("\\", "\\\\").replace("%", "\\%")
                  .replace("_", "\\_") + "%")
        return await self._fetch_one(
            select(c).where(and_(c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                                 c.c.msg_type == "system",
                                 c.c.content.like(prefix, escape="\\")))
            .order_by(c.c.cid.desc()).limit(1))

    async def add_rating(self, visiter_id: str, business_id: str, service_id: int, score: int,
                         comment: str, ended_cid: int, now: int | None = None) -> Row:
        """Store one rating (committed on return); returns the row. Raises `Conflict`
        ("already rated") when this `ended_cid` of the visitor is rated already."""
        values: Row = dict(visiter_id=visiter_id, business_id=business_id,
                           service_id=service_id, score=score, comment=comment,
                           ended_cid=ended_cid,
                           timestamp=int(now if now is not None else time.time()))
        try:
            async with self.engine.begin() as conn:
                res = await conn.execute(insert(rating).values(**values))
                values["id"] = self._inserted_id(res)
        except IntegrityError as exc:
            raise Conflict("already rated") from exc
        return values

    async def rating_for(self, visiter_id: str, business_id: str, ended_cid: int) -> Row | None:
        """The rating of one `ended` line, or None."""
        r = rating
        return await self._fetch_one(select(r).where(and_(
            r.c.visiter_id == visiter_id, r.c.business_id == business_id,
            r.c.ended_cid == ended_cid)))

    async def latest_rating(self, visiter_id: str, business_id: str,
                            service_id: int | None = None) -> Row | None:
        """The visitor's newest rating (of conversations with agent `service_id` when
        given), or None."""
        r = rating
        cond = [r.c.visiter_id == visiter_id, r.c.business_id == business_id]
        if service_id is not None:
            cond.append(r.c.service_id == service_id)
        return await self._fetch_one(select(r).where(and_(*cond)).order_by(r.c.id.desc())
                                     .limit(1))

    async def ratings_between(self, business_id: str, visiter_id: str, since_s: int,
                              until_s: int, service_id: int | None = None) -> list[Row]:
        """The visitor's ratings given with `since_s <= timestamp <= until_s` (unix seconds,
        inclusive), oldest first; only those of agent `service_id` when given. At most 100."""
        r = rating
        cond = [r.c.business_id == business_id, r.c.visiter_id == visiter_id,
                r.c.timestamp >= since_s, r.c.timestamp <= until_s]
        if service_id is not None:
            cond.append(r.c.service_id == service_id)
        return await self._fetch_all(select(r).where(and_(*cond)).order_by(r.c.id).limit(100))
