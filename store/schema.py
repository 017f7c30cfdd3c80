"""Every table, as SQLAlchemy Core metadata: WoLive's ten and the ones wolive adds.

WoLive's ten tables (`WOLIVE_TABLES`) keep the names and columns the original WoLive has, so
an existing WoLive database can be pointed at. Two things differ on purpose: tables are
InnoDB with utf8mb4 on MySQL/MariaDB (transactions; emoji survive), and `wolive_schema`
records which migrations have run. Columns and tables that are wolive's own say so.
A few of wolive's own tables are defined beside their SQL, on this `metadata`:
`wolive_quick_reply` (`store.quick_replies`), `wolive_rating` (`store.ratings`),
`wolive_visitor_owner` and `wolive_identity` (`store.identity`), `wolive_conversation`
(`store.reports`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Enum,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

#: MySQL-only table options (every table's, ours too); other dialects ignore the prefixed
#: keywords.
MYSQL_TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
          "mysql_collate": "utf8mb4_unicode_ci"}

_NOW = text("CURRENT_TIMESTAMP")

#: Tables whose ids carry authority (an agent's id names its channels `kefu{id}`, its login
#: cookie, the conversations, greeting and status rows that point at it): on SQLite they are
#: AUTOINCREMENT, so a deleted row's id is never given again (without it SQLite reuses the
#: largest rowid after that row is deleted). MySQL/MariaDB's AUTO_INCREMENT never hands out
#: an id twice either (InnoDB keeps the counter across restarts since MariaDB 10.2.4 and
#: MySQL 8.0). Migration 12 converts older SQLite files.
_NO_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}

#: MEDIUMTEXT on MySQL (16 MB), TEXT elsewhere: WoLive's type for chat content.
MediumText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")
#: LONGTEXT on MySQL, TEXT elsewhere: WoLive's type for FAQ bodies.
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql")


def _enum(*values: str, name: str) -> Enum:
    # native_enum on MySQL gives WoLive's ENUM(...); elsewhere a VARCHAR + CHECK.
    return Enum(*values, name=name, native_enum=True, create_constraint=True,
                validate_strings=True)


service = Table(
    "wolive_service", metadata,
    Column("service_id", Integer, primary_key=True, autoincrement=True),
    Column("user_name", String(255), nullable=False),
    Column("nick_name", String(255), nullable=False),
    Column("password", String(255), nullable=False),
    Column("phone", String(255), server_default=""),
    Column("email", String(255), server_default=""),
    Column("business_id", String(255), nullable=False),
    Column("avatar", String(1024), nullable=False,
           server_default="/assets/images/admin/avatar-admin2.png"),
    Column("level", _enum("super_manager", "manager", "service", name="service_level"),
           nullable=False, server_default="service"),
    Column("parent_id", Integer, nullable=False, server_default="0"),
    Column("state", _enum("online", "offline", name="service_state"), nullable=False,
           server_default="offline"),
    Index("pid", "parent_id"),
    Index("web", "business_id"),
    # Not in WoLive's tables: login looks agents up by name, and two agents must not share one.
    UniqueConstraint("user_name", name="user_name"),
    **MYSQL_TABLE_OPTIONS, **_NO_REUSE,
)

visiter = Table(
    "wolive_visiter", metadata,
    Column("vid", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("visiter_name", String(255), nullable=False),
    Column("channel", String(255), nullable=False),
    Column("avatar", String(1024), nullable=False),
    Column("ip", String(255), nullable=False),
    Column("from_url", String(255), nullable=False),
    Column("timestamp", mysql.TIMESTAMP().with_variant(String(32), "sqlite"), nullable=False,
           server_default=_NOW),
    Column("business_id", String(100), nullable=False),
    Column("state", _enum("online", "offline", name="visiter_state"), nullable=False,
           server_default="offline"),
    UniqueConstraint("visiter_id", "business_id", name="id"),
    Index("visiter", "visiter_id"),
    Index("time", "timestamp"),
    Index("visiter_channel", "channel"),
    **MYSQL_TABLE_OPTIONS,
)

business = Table(
    "wolive_business", metadata,
    Column("wid", Integer, primary_key=True, autoincrement=True),
    Column("business_id", String(100), nullable=False),
    Column("distribution_rule", _enum("auto", "claim", name="distribution_rule"),
           server_default="claim"),
    Column("video_state", _enum("close", "open", name="video_state"), nullable=False,
           server_default="close"),
    Column("audio_state", _enum("close", "open", name="audio_state"), nullable=False,
           server_default="close"),
    Column("voice_state", _enum("close", "open", name="voice_state"), nullable=False,
           server_default="open"),
    Column("voice_address", String(255), nullable=False,
           server_default="/upload/voice/default.mp3"),
    Column("state", _enum("close", "open", name="business_state"), nullable=False,
           server_default="open"),
    UniqueConstraint("business_id", name="bussiness"),
    **MYSQL_TABLE_OPTIONS, **_NO_REUSE,
)

#: `wolive_chats.msg_type` values. A "system" row is a line the server writes into a
#: conversation's transcript (an end, a transfer, a greeting's sender...): `content` is JSON
#: `{"key": <what happened>, "vars": {...}}`, rendered by the pages in their language, never
#: as HTML; direction `to_visiter`, state `readed` (it never counts as unread). A "note"
#: row (migration 11) is such a line for the agents only (a transfer's note): the visitor's
#: reads never return it.
CHAT_MSG_TYPES = ("text", "image", "file", "system", "note")

chats = Table(
    "wolive_chats", metadata,
    Column("cid", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("service_id", Integer, nullable=False),
    Column("business_id", String(100), nullable=False),
    Column("content", MediumText, nullable=False),
    Column("timestamp", Integer, nullable=False),
    Column("state", _enum("readed", "unread", name="chat_state"), nullable=False,
           server_default="unread"),
    Column("direction", _enum("to_visiter", "to_service", name="chat_direction")),
    # Not in WoLive's tables (migration 2): how to read `content`, never as HTML; "system"
    # (migration 6): a line the server writes into the transcript (see `SYSTEM_LINE`).
    Column("msg_type", _enum(*CHAT_MSG_TYPES, name="chat_msg_type"), nullable=False,
           server_default="text"),
    Index("chats_visiter", "visiter_id"),
    Index("service", "service_id"),
    Index("chats_time", "timestamp"),
    Index("chat", "business_id"),
    # Not in WoLive's tables (migration 5): one conversation's messages in cid order, for the
    # console's list (last message, unread count per visitor) and history pages. Without
    # it SQLite may pick `chat` (business_id) and scan every message of the business for
    # each visitor: 45 s for 1,000 conversations of 100,000 messages (bench/ui_bench.py).
    Index("chats_conversation", "visiter_id", "business_id", "cid"),
    **MYSQL_TABLE_OPTIONS,
)

message = Table(
    "wolive_message", metadata,
    Column("mid", Integer, primary_key=True, autoincrement=True),
    Column("content", Text, nullable=False),
    Column("name", String(255), nullable=False),
    Column("moblie", String(255), nullable=False),  # sic: WoLive's spelling
    Column("email", String(255), nullable=False),
    Column("business_id", String(100)),
    Column("timestamp", mysql.TIMESTAMP().with_variant(String(32), "sqlite"), nullable=False,
           server_default=_NOW),
    # Not in WoLive's tables (migration 4): whether an agent has read the message.
    Column("state", _enum("unread", "readed", name="message_state"), nullable=False,
           server_default="unread"),
    Index("message_timestamp", "timestamp"),
    Index("message_web", "business_id"),
    **MYSQL_TABLE_OPTIONS,
)

question = Table(
    "wolive_question", metadata,
    Column("qid", Integer, primary_key=True, autoincrement=True),
    Column("business_id", String(225), nullable=False),
    Column("question", LongText, nullable=False),
    Column("answer", LongText, nullable=False),
    Column("answer_read", LongText, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

queue = Table(
    "wolive_queue", metadata,
    Column("qid", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("service_id", Integer, nullable=False),
    Column("business_id", String(100), nullable=False),
    Column("state", _enum("normal", "complete", "in_black_list", name="queue_state"),
           nullable=False, server_default="normal"),
    Column("timestamp", mysql.TIMESTAMP().with_variant(String(32), "sqlite"), nullable=False,
           server_default=_NOW),
    UniqueConstraint("visiter_id", "business_id", name="queue_id"),
    Index("se", "service_id"),
    Index("vi", "visiter_id"),
    Index("business", "business_id"),
    **MYSQL_TABLE_OPTIONS,
)

sentence = Table(
    "wolive_sentence", metadata,
    Column("sid", Integer, primary_key=True, autoincrement=True),
    Column("content", Text, nullable=False),
    Column("service_id", Integer, nullable=False),
    Column("state", _enum("using", "unuse", name="sentence_state"), server_default="unuse"),
    UniqueConstraint("service_id", name="sentence_se"),
    **MYSQL_TABLE_OPTIONS,
)

tablist = Table(
    "wolive_tablist", metadata,
    Column("tid", Integer, primary_key=True, autoincrement=True),
    Column("title", String(255), nullable=False),
    Column("content", Text, nullable=False),
    Column("content_read", Text, nullable=False),
    Column("business_id", String(2555), nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

weixin = Table(
    "wolive_weixin", metadata,
    Column("wid", Integer, primary_key=True, autoincrement=True),
    Column("service_id", Integer, nullable=False),
    Column("open_id", String(255), nullable=False),
    Index("weixin_service_id", "service_id"),
    **MYSQL_TABLE_OPTIONS,
)

#: Not in WoLive's tables (migration 3): when each agent was last given a visitor and last
#: replied, in milliseconds since the epoch, so auto-assignment can break a load tie in
#: favour of the agent idle longest. An agent with no row has never been busy (idle since 0).
service_load = Table(
    "wolive_service_load", metadata,
    Column("service_id", Integer, primary_key=True, autoincrement=False),
    Column("last_assigned_ms", BigInteger, nullable=False, server_default="0"),
    Column("last_active_ms", BigInteger, nullable=False, server_default="0"),
    **MYSQL_TABLE_OPTIONS,
)

#: Not in WoLive's tables: the status an agent sets explicitly, `available` (the
#: auto rule may give it visitors) or `away` (it keeps its open conversations but gets no
#: new ones and is no transfer target), with when it was set (ms since the epoch). An agent
#: with no row is available. Independent of `wolive_service.state` (online/offline), which
#: follows the agent's open consoles. Made by `metadata.create_all`; no migration needed.
service_status = Table(
    "wolive_service_status", metadata,
    Column("service_id", Integer, primary_key=True, autoincrement=False),
    Column("status", _enum("available", "away", name="service_status"), nullable=False,
           server_default="available"),
    Column("changed_ms", BigInteger, nullable=False, server_default="0"),
    **MYSQL_TABLE_OPTIONS,
)

#: Not in WoLive's tables: one row per visitor with what the agent console's visitor card shows
#: and edits: the name / phone / note an agent wrote, the browser's User-Agent and referrer,
#: first and last visit and how many visits (`store.visitors`). Made by
#: `metadata.create_all` (a new table, nothing to alter), so an existing database gains it.
MAX_USER_AGENT = 512
MAX_REFERRER = 1024
visiter_info = Table(
    "wolive_visiter_info", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("business_id", String(100), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("tel", String(64), nullable=False, server_default=""),
    Column("note", Text, nullable=True),
    Column("user_agent", String(MAX_USER_AGENT), nullable=False, server_default=""),
    Column("referrer", String(MAX_REFERRER), nullable=False, server_default=""),
    Column("first_visit", Integer, nullable=False, server_default="0"),
    Column("last_visit", Integer, nullable=False, server_default="0"),
    Column("visits", Integer, nullable=False, server_default="0"),
    UniqueConstraint("visiter_id", "business_id", name="visiter_info_id"),
    Index("visiter_info_business", "business_id"),
    **MYSQL_TABLE_OPTIONS,
)

#: The migrations that have run; one row per version.
schema_version = Table(
    "wolive_schema", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Integer, nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

#: WoLive's ten tables, by their original names.
WOLIVE_TABLES = (
    "wolive_service", "wolive_visiter", "wolive_business", "wolive_chats", "wolive_message",
    "wolive_question", "wolive_queue", "wolive_sentence", "wolive_tablist", "wolive_weixin",
)
