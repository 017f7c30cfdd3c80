"""Versioned schema migrations, applied in order at start-up and recorded in `wolive_schema`.

`metadata.create_all` makes any missing table with today's columns; each migration brings an
older database (ours, or an existing WoLive one being pointed at) up to date and is a no-op
where its change is already there, so running them on a fresh database is harmless.
Never drop or rename the WoLive document's tables or columns (ARCHITECTURE.md, "Storage").
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection


def _columns(conn: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def _v1_wolive_tables(conn: Connection) -> None:
    """The ten WoLive tables (made by create_all)."""


def _v2_chat_message_type(conn: Connection) -> None:
    """`wolive_chats.msg_type`: text, image or file, so content is never trusted as HTML."""
    if "msg_type" in _columns(conn, "wolive_chats"):
        return
    if conn.dialect.name == "mysql":
        ddl = ("ALTER TABLE wolive_chats ADD COLUMN msg_type ENUM('text','image','file') "
               "NOT NULL DEFAULT 'text'")
    else:
        ddl = "ALTER TABLE wolive_chats ADD COLUMN msg_type VARCHAR(5) NOT NULL DEFAULT 'text'"
    conn.execute(text(ddl))


def _v3_service_load(conn: Connection) -> None:
    """`wolive_service_load` (made by create_all): agents' last assignment and reply times,
    the tie-break of auto-assignment (fewest open conversations, then idle longest)."""


def _v4_message_state(conn: Connection) -> None:
    """`wolive_message.state`: unread / readed, so the console can tell new messages."""
    if "state" in _columns(conn, "wolive_message"):
        return
    if conn.dialect.name == "mysql":
        ddl = ("ALTER TABLE wolive_message ADD COLUMN state ENUM('unread','readed') "
               "NOT NULL DEFAULT 'unread'")
    else:
        ddl = "ALTER TABLE wolive_message ADD COLUMN state VARCHAR(6) NOT NULL DEFAULT 'unread'"
    conn.execute(text(ddl))


def _v5_chats_conversation_index(conn: Connection) -> None:
    """`wolive_chats` index `chats_conversation` (visiter_id, business_id, cid): a
    conversation's messages, its last message and unread count without scanning the
    business (docs/performance.md, "Console and history page load")."""
    if "chats_conversation" in {i["name"] for i in inspect(conn).get_indexes("wolive_chats")}:
        return
    conn.execute(text("CREATE INDEX chats_conversation ON wolive_chats "
                      "(visiter_id, business_id, cid)"))


#: Migration for version N is MIGRATIONS[N - 1]. Append only.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_wolive_tables,
    _v2_chat_message_type,
    _v3_service_load,
    _v4_message_state,
    _v5_chats_conversation_index,
]
