"""Versioned schema migrations, applied in order at start-up and recorded in `wolive_schema`.

`metadata.create_all` makes any missing table with today's columns; each migration brings an
older database (ours, or an existing WoLive one being pointed at) up to date and is a no-op
where its change is already there, so running them on a fresh database is harmless.
Never drop or rename WoLive's own tables or columns.
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Connection

log = logging.getLogger("wolive.store")


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


def _v6_chat_system_lines(conn: Connection) -> None:
    """`wolive_chats.msg_type` may be "system": lines the server writes into a transcript.

    MySQL: the ENUM gains the value. SQLite: a table made by `create_all` carries a CHECK
    constraint listing the old values, which SQLite cannot alter, so the table is rebuilt
    (same columns, rows and cids; its indexes made again); a table whose `msg_type` came from
    migration 2 has no CHECK and needs nothing."""
    from . import schema

    if conn.dialect.name == "mysql":
        values = ",".join(f"'{v}'" for v in schema.CHAT_MSG_TYPES)
        conn.execute(text(f"ALTER TABLE wolive_chats MODIFY COLUMN msg_type ENUM({values}) "
                          "NOT NULL DEFAULT 'text'"))
        return
    ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'wolive_chats'")).scalar() or ""
    if "CHECK (msg_type IN" not in ddl or "'system'" in ddl:
        return
    _rebuild_sqlite_chats(conn)


def _rebuild_sqlite_chats(conn: Connection) -> None:
    """SQLite: make `wolive_chats` again with today's columns and CHECKs (same rows and
    cids; its indexes made again)."""
    from . import schema

    indexes = [i["name"] for i in inspect(conn).get_indexes("wolive_chats")]
    conn.execute(text("ALTER TABLE wolive_chats RENAME TO wolive_chats_v5"))
    for name in indexes:
        conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    schema.chats.create(conn)
    cols = ", ".join(c.name for c in schema.chats.columns)
    conn.execute(text(f"INSERT INTO wolive_chats ({cols}) SELECT {cols} FROM wolive_chats_v5"))
    conn.execute(text("DROP TABLE wolive_chats_v5"))


def _v7_quick_replies(conn: Connection) -> None:
    """`wolive_quick_reply` (made by create_all, store/quick_replies.py): quick replies kept
    on the server, an agent's own and the business's shared ones."""


def _v8_ratings(conn: Connection) -> None:
    """`wolive_rating` (made by create_all, `store/ratings.py`): a visitor's 1-5 rating and
    comment of an ended conversation."""


def _v9_visitor_identity(conn: Connection) -> None:
    """`wolive_visitor_owner` and `wolive_identity` (made by create_all, `store/identity.py`):
    which browser owns a visitor id (its token's hash), each business's identity secret and
    its "require signed ids" switch."""


def _v10_user_name_nocase(conn: Connection) -> None:
    """SQLite: unique index `service_user_name_nocase` on `wolive_service (user_name COLLATE
    NOCASE)`, so "Alice" and "alice" are one user name, as MariaDB's case-insensitive
    collation already has them (SQLite's NOCASE folds ASCII letters). A database that
    already holds such a pair keeps working without the index, and the start-up log names
    the pair to rename. MySQL/MariaDB: nothing to do."""
    _sqlite_unique_nocase(conn, "wolive_service", "user_name", "service_user_name_nocase")


def _sqlite_unique_nocase(conn: Connection, table: str, column: str, index: str) -> None:
    """On SQLite, a unique index on `column COLLATE NOCASE` unless the table already holds
    values differing only in case (then a warning names them and the index is left out)."""
    if conn.dialect.name != "sqlite":
        return
    if index in {i["name"] for i in inspect(conn).get_indexes(table)}:
        return
    clashes = conn.execute(text(
        f"SELECT group_concat({column}, ', ') FROM {table} "
        f"GROUP BY {column} COLLATE NOCASE HAVING count(*) > 1")).scalars().all()
    if clashes:
        log.warning("%s values differing only in case: %s; rename all but one of each and "
                    "run: CREATE UNIQUE INDEX %s ON %s (%s COLLATE NOCASE)", column,
                    "; ".join(clashes), index, table, column)
        return
    conn.execute(text(f"CREATE UNIQUE INDEX {index} ON {table} ({column} COLLATE NOCASE)"))


def _v11_chat_notes(conn: Connection) -> None:
    """`wolive_chats.msg_type` may be "note": a line for the agents only (a transfer's note
    for the receiving agent), never returned to the visitor. As migration 6: MySQL's ENUM
    gains the value; an SQLite table whose CHECK lists the old values is rebuilt."""
    from . import schema

    if conn.dialect.name == "mysql":
        values = ",".join(f"'{v}'" for v in schema.CHAT_MSG_TYPES)
        conn.execute(text(f"ALTER TABLE wolive_chats MODIFY COLUMN msg_type ENUM({values}) "
                          "NOT NULL DEFAULT 'text'"))
        return
    ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'wolive_chats'")).scalar() or ""
    if "CHECK (msg_type IN" in ddl and "'note'" not in ddl:
        _rebuild_sqlite_chats(conn)


#: Columns that hold an agent's id, besides `wolive_service.service_id` itself: the largest id
#: ever handed out may survive only there once its agent row is gone (migration 12).
_SERVICE_ID_REFERENCES = (
    ("wolive_service", "parent_id"), ("wolive_chats", "service_id"),
    ("wolive_queue", "service_id"), ("wolive_sentence", "service_id"),
    ("wolive_weixin", "service_id"), ("wolive_service_load", "service_id"),
    ("wolive_service_status", "service_id"), ("wolive_quick_reply", "service_id"),
    ("wolive_rating", "service_id"),
)


def _v12_ids_never_reused(conn: Connection) -> None:
    """SQLite: `wolive_service` and `wolive_business` become AUTOINCREMENT tables, so the id
    of a deleted agent (or business) is never given to a new one, which would otherwise
    inherit its channel `kefu{id}`, its visitors, its greeting and whatever still points at
    the id. Without AUTOINCREMENT SQLite gives a new row the largest rowid + 1, so deleting
    the newest agent made its id free again. Each table is rebuilt (same rows, ids,
    indexes), and the agents' counter starts above every id still named anywhere (an agent
    deleted before this migration may live on in old conversations).

    MySQL/MariaDB: nothing to do. AUTO_INCREMENT never hands out an id twice while the
    server runs, and InnoDB keeps the counter across restarts since MariaDB 10.2.4 / MySQL
    8.0 (older servers recompute it as the largest id + 1 at start-up)."""
    if conn.dialect.name != "sqlite":
        return
    from . import schema

    _rebuild_sqlite_autoincrement(conn, schema.business)
    _rebuild_sqlite_autoincrement(conn, schema.service)
    tables = set(inspect(conn).get_table_names())
    highest = [int(conn.execute(text(f'SELECT COALESCE(MAX("{column}"), 0) FROM "{table}"'))
                   .scalar() or 0)
               for table, column in _SERVICE_ID_REFERENCES if table in tables]
    _sqlite_sequence_at_least(conn, "wolive_service", max(highest, default=0))


def _rebuild_sqlite_autoincrement(conn: Connection, table: Table) -> None:
    """SQLite: make `table` again from today's metadata (AUTOINCREMENT, `sqlite_autoincrement`)
    when its DDL lacks it: same rows and ids, its indexes made again (those the metadata
    does not declare, e.g. migration 10's, from their saved SQL)."""
    name = table.name
    ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                            "AND name = :n"), {"n": name}).scalar() or ""
    if "AUTOINCREMENT" in ddl.upper():
        return
    indexes = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                "AND tbl_name = :n AND sql IS NOT NULL"), {"n": name}).all()
    old = f"{name}_v11"
    conn.execute(text(f'ALTER TABLE "{name}" RENAME TO "{old}"'))
    for index_name, _sql in indexes:
        conn.execute(text(f'DROP INDEX IF EXISTS "{index_name}"'))
    table.create(conn)
    kept = _columns(conn, old)
    cols = ", ".join(f'"{c.name}"' for c in table.columns if c.name in kept)
    conn.execute(text(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM "{old}"'))
    conn.execute(text(f'DROP TABLE "{old}"'))
    made = {i["name"] for i in inspect(conn).get_indexes(name)}
    for index_name, sql in indexes:
        if index_name not in made:
            conn.execute(text(sql))


def _sqlite_sequence_at_least(conn: Connection, table: str, value: int) -> None:
    """SQLite: the AUTOINCREMENT counter of `table` is at least `value` (its next id is
    above it)."""
    seq = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :n"),
                       {"n": table}).scalar()
    if seq is None:
        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :v)"),
                     {"n": table, "v": value})
    elif int(seq) < value:
        conn.execute(text("UPDATE sqlite_sequence SET seq = :v WHERE name = :n"),
                     {"n": table, "v": value})


def _v13_conversations(conn: Connection) -> None:
    """`wolive_conversation` (made by create_all, `store/reports.py`): one row per
    conversation with when it started, was assigned, first answered and ended, for the
    managers' reports. Conversations already open when this runs are
    counted from their next change."""


def _v14_business_id_nocase(conn: Connection) -> None:
    """SQLite: unique index `business_id_nocase` on `wolive_business (business_id COLLATE
    NOCASE)`, so "shop1" and "SHOP1" cannot both be opened, as MariaDB's case-insensitive
    collation already refuses (before, SQLite accepted the second). A database that already
    holds such a pair keeps working without the index, and the start-up log names it.
    MySQL/MariaDB: nothing to do."""
    _sqlite_unique_nocase(conn, "wolive_business", "business_id", "business_id_nocase")


#: Migration for version N is MIGRATIONS[N - 1]. Append only.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_wolive_tables,
    _v2_chat_message_type,
    _v3_service_load,
    _v4_message_state,
    _v5_chats_conversation_index,
    _v6_chat_system_lines,
    _v7_quick_replies,
    _v8_ratings,
    _v9_visitor_identity,
    _v10_user_name_nocase,
    _v11_chat_notes,
    _v12_ids_never_reused,
    _v13_conversations,
    _v14_business_id_nocase,
]
