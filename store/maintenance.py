"""SQL for the admin commands (`python wolive.py <command>`, README "Production"): the
migrations a database still needs, the upload names the tables refer to, and chat retention.

Plain functions over a `Store` opened with `migrate=False`: nothing here runs at serving
time, and the dry runs only read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Enum, String, Text, and_, delete, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import Store
from . import schema as t
from .ratings import rating
from .reports import conversation
from .database import SCHEMA_VERSION

#: An upload's URL path as messages, avatars, FAQ and tab bodies carry it
#: (`realtime.chat.uploads`: `/upload/<32 hex>.<ext>`); group 1 is the stored name.
UPLOAD_REF_RE = re.compile(r"/upload/([0-9a-f]{32}\.[a-z0-9]{1,5})")
#: Visitors deleted per transaction by `purge_conversations`.
PURGE_BATCH = 500


@dataclass
class MigrationPlan:
    """What `Store.migrate` would do: the version in force (0: no `wolive_schema` table),
    the migrations it would run, the tables `create_all` would make."""

    version: int
    pending: list[int]
    missing_tables: list[str]


async def migration_plan(store: Store) -> MigrationPlan:
    """Reads only."""
    async with store.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        version = 0
        if t.schema_version.name in tables:
            version = int((await conn.execute(
                select(func.max(t.schema_version.c.version)))).scalar() or 0)
    missing = [name for name in t.metadata.tables if name not in tables]
    return MigrationPlan(version, list(range(version + 1, SCHEMA_VERSION + 1)), missing)


async def referenced_uploads(store: Store) -> set[str]:
    """Stored upload names (`realtime.chat.uploads.STORED_NAME_RE`) that any text column of any
    wolive table mentions as `/upload/<name>`: image and file messages, avatars, FAQ and
    tab bodies, the message board, the business's sound. Rows are streamed."""
    names: set[str] = set()
    async with store.read_engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        for table in t.metadata.sorted_tables:
            if table.name not in tables:
                continue
            for column in table.columns:
                if not isinstance(column.type, (String, Text)) or \
                        isinstance(column.type, Enum):
                    continue
                stmt = select(column).where(column.like("%/upload/%"))
                if not hasattr(conn, "stream"):
                    # SQLite runs in the loop's thread (store.inloop): rows are read in
                    # place, a batch at a time; the command has the loop to itself.
                    for (value,) in (await conn.execute(stmt)).yield_per(1000):
                        names.update(UPLOAD_REF_RE.findall(value or ""))
                    continue
                result = await conn.stream(stmt.execution_options(yield_per=1000))
                async for (value,) in result:
                    names.update(UPLOAD_REF_RE.findall(value or ""))
    return names


@dataclass
class PurgeResult:
    """Conversations of one business whose newest message is older than the cutoff: how
    many, and the rows deleted (or, in a dry run, that would be) per table."""

    conversations: int = 0
    skipped_online: int = 0
    rows: dict[str, int] = field(default_factory=dict)


async def purge_conversations(store: Store, business_id: str, cutoff: int,
                              dry_run: bool) -> PurgeResult:
    """Chat retention. A conversation (a visitor of `business_id`) whose newest message is
    older than `cutoff` (epoch seconds) loses its messages (`wolive_chats`), ratings, its
    queue row, its visitor row, the agents' notes on the visitor (`wolive_visiter_info`) and
    its reports' rows (`wolive_conversation`).
    Kept: blacklist entries (queue rows `in_black_list`, and then the visitor rows too),
    conversations of visitors online now, who owns a visitor id (`wolive_visitor_owner`),
    the message board. Conversations without any message are not touched. Files of
    deleted messages are left to `cleanup-uploads`."""
    chats = t.chats
    out = PurgeResult(rows={"wolive_chats": 0, "wolive_rating": 0, "wolive_queue": 0,
                            "wolive_visiter": 0, "wolive_visiter_info": 0,
                            "wolive_conversation": 0})
    async with store.read_engine.connect() as conn:
        old = (await conn.execute(
            select(chats.c.visiter_id).where(chats.c.business_id == business_id)
            .group_by(chats.c.visiter_id).having(func.max(chats.c.timestamp) < cutoff)
        )).scalars().all()
        online = set((await conn.execute(select(t.visiter.c.visiter_id).where(and_(
            t.visiter.c.business_id == business_id, t.visiter.c.state == "online")))
        ).scalars().all())
    ids = [v for v in old if v not in online]
    out.skipped_online = len(old) - len(ids)
    out.conversations = len(ids)
    for start in range(0, len(ids), PURGE_BATCH):
        batch = ids[start:start + PURGE_BATCH]
        if dry_run:
            async with store.read_engine.connect() as conn:
                await _purge_batch(conn, business_id, batch, out, count_only=True)
        else:
            async with store.engine.begin() as conn:
                await _purge_batch(conn, business_id, batch, out, count_only=False)
    return out


async def _purge_batch(conn: AsyncConnection, business_id: str, batch: list[str],
                       out: PurgeResult, count_only: bool) -> None:
    blacklisted = set((await conn.execute(select(t.queue.c.visiter_id).where(and_(
        t.queue.c.business_id == business_id, t.queue.c.visiter_id.in_(batch),
        t.queue.c.state == "in_black_list")))).scalars().all())
    plain = [v for v in batch if v not in blacklisted]
    targets = [
        (t.chats, and_(t.chats.c.business_id == business_id, t.chats.c.visiter_id.in_(batch))),
        (rating, and_(rating.c.business_id == business_id, rating.c.visiter_id.in_(batch))),
        (t.queue, and_(t.queue.c.business_id == business_id, t.queue.c.visiter_id.in_(plain))),
        (t.visiter, and_(t.visiter.c.business_id == business_id,
                         t.visiter.c.visiter_id.in_(plain))),
        (t.visiter_info, and_(t.visiter_info.c.business_id == business_id,
                              t.visiter_info.c.visiter_id.in_(plain))),
        # The reports' rows of those conversations (store/reports.py).
        (conversation, and_(conversation.c.business_id == business_id,
                            conversation.c.visiter_id.in_(batch))),
    ]
    for table, where in targets:
        if count_only:
            n = int((await conn.execute(select(func.count()).select_from(table).where(where))
                     ).scalar() or 0)
        else:
            n = (await conn.execute(delete(table).where(where))).rowcount or 0
        out.rows[table.name] += n
