"""SQL for visitor identity: which browser owns a visitor id, and each
business's identity secret and its "require signed ids" switch.

Both tables are ours (not WoLive's) and are made by `metadata.create_all` at
start-up (recorded as schema migration 9, `_v9_visitor_identity`), so an existing database
simply gains them:

- `wolive_visitor_owner`: one row per `(business_id, visiter_id)` that a browser owns; the
  browser holds a secret token, the row keeps only its SHA-256 (`token_hash`, 64 hex).
- `wolive_identity`: one row per business with its identity secret (64 hex) and
  `require_signed` (0/1), made on first use.

Rules (who gets a token, signatures) are the use cases' (`realtime.chat.identity`).
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, Integer, String, Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .prepared import Prepared


visitor_owner = Table(
    "wolive_visitor_owner", t.metadata,
    Column("business_id", String(100), primary_key=True),
    Column("visiter_id", String(200), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", Integer, nullable=False, server_default="0"),
    **t.MYSQL_TABLE_OPTIONS,
)

identity = Table(
    "wolive_identity", t.metadata,
    Column("business_id", String(100), primary_key=True),
    Column("secret", String(64), nullable=False),
    Column("require_signed", Integer, nullable=False, server_default="0"),
    Column("updated_at", Integer, nullable=False, server_default="0"),
    **t.MYSQL_TABLE_OPTIONS,
)


def _claim(dialect: str) -> object:
    """Insert the owner row unless one exists (then nothing changes): no error, so it can
    run inside a longer transaction (`StoreBase.unit`). SQLite's rowcount says which; on
    MySQL/MariaDB (found rows are counted, and `INSERT IGNORE` costs a `SHOW WARNINGS`
    round trip in aiomysql) the row is read back."""
    values: dict[str, Any] = {name: bindparam(name) for name in (
        "business_id", "visiter_id", "token_hash", "created_at")}
    if dialect == "sqlite":
        return sqlite.insert(visitor_owner).values(**values).on_conflict_do_nothing()
    return mysql.insert(visitor_owner).values(**values).on_duplicate_key_update(
        created_at=visitor_owner.c.created_at)


#: The chat window's identity statements, compiled once (store.prepared).
OWNER_HASH = Prepared(lambda _d: select(visitor_owner.c.token_hash).where(and_(
    visitor_owner.c.business_id == bindparam("business_id"),
    visitor_owner.c.visiter_id == bindparam("visiter_id"))))
VISITOR_KNOWN = Prepared(lambda _d: select(t.visiter.c.vid).where(and_(
    t.visiter.c.business_id == bindparam("business_id"),
    t.visiter.c.visiter_id == bindparam("visiter_id"))))
CLAIM = Prepared(_claim)
SETTINGS = Prepared(lambda _d: select(identity).where(
    identity.c.business_id == bindparam("business_id")))


class IdentityStore(StoreBase):
    """Visitor owners and business identity settings (see the module docstring)."""

    async def visitor_owner_hash(self, business_id: str, visiter_id: str) -> str | None:
        """The token hash of the browser owning the visitor, or None when nobody owns it."""
        async with self._reading() as conn:
            rows = (await self._run(conn, OWNER_HASH, business_id=business_id,
                                    visiter_id=visiter_id)).rows
        return str(rows[0]["token_hash"]) if rows else None

    async def visitor_known(self, business_id: str, visiter_id: str) -> bool:
        """Whether the visitor has a `wolive_visiter` row (it chatted before)."""
        async with self._reading() as conn:
            return bool((await self._run(conn, VISITOR_KNOWN, business_id=business_id,
                                         visiter_id=visiter_id)).rows)

    async def claim_visitor(self, business_id: str, visiter_id: str, token_hash: str) -> bool:
        """Make the browser with `token_hash` the visitor's owner, unless somebody already
        is (then nothing is written). True when this call made the claim. One statement
        (insert unless the key exists), in the task's `unit` when it holds one."""
        async with self._writing() as conn:
            ran = await self._run(conn, CLAIM, business_id=business_id,
                                  visiter_id=visiter_id, token_hash=token_hash,
                                  created_at=int(time.time()))
            if self.dialect == "sqlite":
                return ran.rowcount == 1
            rows = (await self._run(conn, OWNER_HASH, business_id=business_id,
                                    visiter_id=visiter_id)).rows
        return bool(rows) and rows[0]["token_hash"] == token_hash

    async def identity_settings(self, business_id: str, new_secret: str) -> Row:
        """The business's `{business_id, secret, require_signed, updated_at}`; made with
        `new_secret` when it has none yet (two first calls at once: one row wins)."""
        i = identity
        async with self._reading() as conn:
            rows = (await self._run(conn, SETTINGS, business_id=business_id)).rows
        if rows:
            return rows[0]
        try:
            async with self._writing() as conn:
                await conn.execute(insert(i).values(business_id=business_id, secret=new_secret,
                                                    require_signed=0,
                                                    updated_at=int(time.time())))
        except IntegrityError:
            pass
        return await self._fetch_one(select(i).where(i.c.business_id == business_id)) or {}

    async def set_identity_settings(self, business_id: str, secret: str | None = None,
                                    require_signed: bool | None = None) -> None:
        """Change the secret and/or the switch of a business whose row exists
        (`identity_settings` makes it)."""
        values: dict[str, Any] = {"updated_at": int(time.time())}
        if secret is not None:
            values["secret"] = secret
        if require_signed is not None:
            values["require_signed"] = 1 if require_signed else 0
        async with self.engine.begin() as conn:
            await conn.execute(update(identity).where(identity.c.business_id == business_id)
                               .values(**values))
