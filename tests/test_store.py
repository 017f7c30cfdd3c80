"""Schema: the ten WoLive tables with their documented columns, on SQLite and MariaDB."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from helpers import db_rows
from store import SCHEMA_VERSION, Store
from store.schema import WOLIVE_TABLES


#: Columns wolive adds after the documented ones (store/migrations.py).
ADDED_COLUMNS = {"wolive_chats": {"msg_type"}, "wolive_message": {"state"}}


def documented_columns() -> dict[str, list[str]]:
    """Columns per table, read from the WoLive document's CREATE TABLE statements."""
    doc = (ROOT.parent / "shared" / "seed" / "wolive-doc.md")
    if not doc.exists():
        pytest.skip("the WoLive document is not beside the checkout")
    text = doc.read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"CREATE TABLE `(\w+)` \((.*?)\n\)", text, re.S):
        cols = re.findall(r"^\s+`(\w+)` ", m.group(2), re.M)
        out[m.group(1)] = cols
    return out


def columns(db_url: str, table: str) -> list[str]:
    if db_url.startswith("sqlite"):
        return [r["name"] for r in db_rows(db_url, f"PRAGMA table_info({table})")]
    return [r["COLUMN_NAME"] for r in db_rows(
        db_url, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        "DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (table,))]


@pytest.mark.gen_test
async def test_schema_created_with_documented_tables_and_columns(db_url: str,
                                                                 tmp_path: Path) -> None:
    store = await Store.open(db_url)
    await store.close()
    doc = documented_columns()
    assert sorted(doc) == sorted(WOLIVE_TABLES)
    for table, cols in doc.items():
        have = columns(db_url, table)
        assert have[:len(cols)] == cols, table  # the documented ones, in order
        assert set(have[len(cols):]) <= ADDED_COLUMNS.get(table, set()), table
    assert [r["version"] for r in db_rows(db_url, "SELECT version FROM wolive_schema")] == \
        list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.gen_test
async def test_migrate_is_idempotent_and_keeps_data(db_url: str) -> None:
    store = await Store.open(db_url)
    await store.install("shop1", "boss", "Boss", "x")
    await store.close()
    store = await Store.open(db_url)
    assert await store.migrate() == SCHEMA_VERSION
    assert await store.schema_version() == SCHEMA_VERSION
    assert (await store.find_service_by_name("boss"))["level"] == "super_manager"
    await store.close()
    assert len(db_rows(db_url, "SELECT * FROM wolive_schema")) == SCHEMA_VERSION


@pytest.mark.mariadb
@pytest.mark.gen_test
async def test_mariadb_tables_are_innodb_utf8mb4(fresh_mysql_db: str) -> None:
    store = await Store.open(fresh_mysql_db)
    await store.close()
    rows = db_rows(fresh_mysql_db, "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM "
                   "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    by_name = {r["TABLE_NAME"]: r for r in rows}
    for table in WOLIVE_TABLES:
        assert by_name[table]["ENGINE"] == "InnoDB", table
        assert by_name[table]["TABLE_COLLATION"].startswith("utf8mb4"), table
    enum = db_rows(fresh_mysql_db, "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
                   "TABLE_SCHEMA = DATABASE() AND TABLE_NAME='wolive_service' AND "
                   "COLUMN_NAME='level'")[0]["COLUMN_TYPE"]
    assert enum == "enum('super_manager','manager','service')"


@pytest.mark.gen_test
async def test_emoji_and_chinese_survive(db_url: str) -> None:
    store = await Store.open(db_url)
    text = "你好 👋🏽 — ok"
    row = await store.add_chat("v1", 1, "shop1", text, "to_service")
    await store.close()
    assert db_rows(db_url, "SELECT content FROM wolive_chats WHERE cid = %s",
                   (row["cid"],))[0]["content"] == text


@pytest.mark.gen_test
async def test_install_runs_once(db_url: str) -> None:
    from store import Conflict
    store = await Store.open(db_url)
    await store.install("shop1", "boss", "Boss", "x")
    with pytest.raises(Conflict):
        await store.install("shop2", "other", "Other", "y")
    await store.close()
    assert len(db_rows(db_url, "SELECT * FROM wolive_service")) == 1
    assert len(db_rows(db_url, "SELECT * FROM wolive_business")) == 1




@pytest.mark.mariadb
@pytest.mark.gen_test
async def test_existing_wolive_database_is_migrated(fresh_mysql_db: str) -> None:
    """The document's own CREATE TABLEs (MyISAM, utf8, no wolive_schema): pointed at, it is
    brought up to date without losing a row."""
    doc = (ROOT.parent / "shared" / "seed" / "wolive-doc.md").read_text(encoding="utf-8")
    for m in re.finditer(r"(CREATE TABLE `\w+` \(.*?\n\)[^;]*;)", doc, re.S):
        db_rows(fresh_mysql_db, m.group(1))
    db_rows(fresh_mysql_db, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, "
            "content, timestamp, direction) VALUES ('v1', 1, 'admin', 'old', 1, 'to_service')")
    store = await Store.open(fresh_mysql_db)
    assert await store.schema_version() == SCHEMA_VERSION
    rows = await store.chats_of("v1", "admin")
    await store.close()
    assert [(r["content"], r["msg_type"]) for r in rows] == [("old", "text")]


@pytest.mark.gen_test
async def test_savepoint_after_a_read_stays_inside_the_transaction(db_url: str) -> None:
    """A failed transaction undoes everything, even work done in a SAVEPOINT after a SELECT
    (pysqlite's own transaction handling would have committed it on RELEASE)."""
    from sqlalchemy import insert, select

    from store import schema as t
    store = await Store.open(db_url)
    with pytest.raises(RuntimeError):
        async with store.engine.begin() as conn:
            await conn.execute(select(t.business.c.wid))
            async with conn.begin_nested():
                await conn.execute(insert(t.business).values(business_id="ghost"))
            raise RuntimeError("roll it all back")
    await store.close()
    assert db_rows(db_url, "SELECT * FROM wolive_business") == []


@pytest.mark.gen_test(timeout=30)
async def test_a_unit_reads_what_others_committed_and_its_isolation_ends_with_it(
        fresh_mysql_db: str) -> None:
    """`Store.unit` on MariaDB is READ COMMITTED for its own transaction (a row another
    connection commits meanwhile is seen by its next read) and only for it: the pooled
    connection's next transaction is the server's default again (REPEATABLE READ: the
    first read's snapshot holds)."""
    import pymysql
    from sqlalchemy import func, insert, select

    from store import schema as t
    store = await Store.open(fresh_mysql_db, pool_size=1, max_overflow=0)
    other = pymysql.connect(host="127.0.0.1", user="root", autocommit=True,
                            database=fresh_mysql_db.rsplit("/", 1)[1])
    count = select(func.count()).select_from(t.business)
    try:
        async with store.unit() as conn:
            first = (await conn.execute(count)).scalar()
            other.cursor().execute("INSERT INTO wolive_business (business_id) VALUES ('b1')")
            assert (await conn.execute(count)).scalar() == first + 1
        async with store.engine.begin() as conn:  # the same (only) pooled connection
            first = (await conn.execute(count)).scalar()
            other.cursor().execute("INSERT INTO wolive_business (business_id) VALUES ('b2')")
            assert (await conn.execute(count)).scalar() == first
            await conn.execute(insert(t.business).values(business_id="b3"))
    finally:
        other.close()
        await store.close()
    assert len(db_rows(fresh_mysql_db, "SELECT * FROM wolive_business")) == 3


@pytest.mark.parametrize("fresh_s", [0.0, 3600.0])
@pytest.mark.gen_test(timeout=30)
async def test_a_pooled_connection_is_pinged_only_after_idling(
        fresh_mysql_db: str, fresh_s: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """MariaDB: a connection back in the pool for `FRESH_S` or longer is pinged at
    checkout, so one the server dropped is replaced unseen; a fresh one is used unpinged
    (no round trip), so a drop meanwhile costs that one request a 503 (`Unavailable`), and
    the pool then replaces it."""
    import pymysql
    from sqlalchemy import text

    import store.pool
    from store import Unavailable
    monkeypatch.setattr(store.pool, "FRESH_S", fresh_s)
    st = await Store.open(fresh_mysql_db, pool_size=1, max_overflow=0)
    other = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    try:
        async with st.read_engine.connect() as conn:
            cid = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar()
        other.cursor().execute(f"KILL {int(cid)}")
        if fresh_s:
            with pytest.raises(Unavailable):
                await st.schema_version()
        assert await st.schema_version() == SCHEMA_VERSION
    finally:
        other.close()
        await st.close()


@pytest.mark.gen_test(timeout=30)
async def test_reads_do_not_wait_for_a_writer(db_url: str) -> None:
    """A write transaction in progress (holding SQLite's write lock) does not hold up reads:
    they see the last committed state at once (WAL) and the write then commits."""
    import asyncio

    from sqlalchemy import insert

    from store import schema as t
    store = await Store.open(db_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(t.business).values(business_id="busy"))
            # Meanwhile, on another connection: reads answer without waiting.
            assert await asyncio.wait_for(store.has_super_manager(), 1.0) is False
            assert await asyncio.wait_for(store.schema_version(), 1.0) == SCHEMA_VERSION
    finally:
        await store.close()
    assert [r["business_id"] for r in db_rows(db_url, "SELECT * FROM wolive_business")] == \
        ["busy"]


@pytest.mark.gen_test
async def test_sqlite_chats_table_from_before_system_lines_is_rebuilt(tmp_path: Path) -> None:
    """Migration 6 on a SQLite `wolive_chats` made by an older create_all (its CHECK lists
    text/image/file only): rebuilt with the same rows, cids and indexes, and it takes
    "system" rows."""
    import sqlite3

    path = tmp_path / "old.db"
    store = await Store.open(f"sqlite:///{path}")
    first = await store.add_chat("v1", 1, "shop1", "old", "to_service")
    await store.close()
    con = sqlite3.connect(path)
    ddl = con.execute("SELECT sql FROM sqlite_master WHERE name = 'wolive_chats'").fetchone()[0]
    indexes = {r[0]: r[1] for r in con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wolive_chats' "
        "AND sql IS NOT NULL")}
    assert "'system'" in ddl and "chats_conversation" in indexes
    con.executescript(
        "ALTER TABLE wolive_chats RENAME TO v6; "
        + ddl.replace(", 'system'", "").replace("VARCHAR(6)", "VARCHAR(5)") + "; "
        "INSERT INTO wolive_chats SELECT * FROM v6; DROP TABLE v6; "
        + "; ".join(indexes.values()) + "; DELETE FROM wolive_schema WHERE version >= 6;")
    con.commit()
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO wolive_chats (visiter_id, service_id, business_id, content, "
                    "timestamp, direction, msg_type) VALUES ('v1', 1, 'shop1', '{}', 1, "
                    "'to_visiter', 'system')")
    con.close()

    store = await Store.open(f"sqlite:///{path}")
    assert await store.schema_version() == SCHEMA_VERSION
    line = await store.add_chat("v1", 1, "shop1", '{"key": "x", "vars": {}}', "to_visiter",
                                msg_type="system", state="readed")
    rows = await store.chats_of("v1", "shop1")
    await store.close()
    assert [(r["cid"], r["msg_type"], r["state"]) for r in rows] == [
        (first["cid"], "text", "unread"), (line["cid"], "system", "readed")]
    con = sqlite3.connect(path)
    assert set(indexes) <= {r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wolive_chats'")}
    con.close()


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_nodes_started_together_on_a_fresh_mariadb_migrate_one_at_a_time(
        fresh_mysql_db: str) -> None:
    """Four stores opened at once on one empty database (three nodes started together, as
    the README's loop does) all open; without a lock the losers failed with "Table
    'wolive_sentence' already exists"."""
    import asyncio
    stores = await asyncio.gather(*[Store.open(fresh_mysql_db) for _ in range(4)],
                                  return_exceptions=True)
    try:
        assert [type(s).__name__ for s in stores] == ["Store"] * 4, stores
        assert await stores[0].schema_version() == SCHEMA_VERSION  # type: ignore[union-attr]
    finally:
        for s in stores:
            if isinstance(s, Store):
                await s.close()


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_installers_racing_on_mariadb_make_one_admin_and_refuse_the_rest(
        fresh_mysql_db: str) -> None:
    """Two nodes' /install at once: one super_manager, the others `Conflict` (a 409), never
    a deadlock error (a 500)."""
    import asyncio

    from store import Conflict
    stores = [await Store.open(fresh_mysql_db) for _ in range(4)]
    try:
        answers = await asyncio.gather(*[
            s.install("shop1", f"boss{i}", "Boss", "x" * 60) for i, s in enumerate(stores)],
            return_exceptions=True)
        assert sorted(type(a).__name__ for a in answers) == ["Conflict"] * 3 + ["dict"], \
            answers
        assert all(isinstance(a, (dict, Conflict)) for a in answers)
        rows = db_rows(fresh_mysql_db, "SELECT user_name FROM wolive_service")
        assert len(rows) == 1
    finally:
        for s in stores:
            await s.close()


@pytest.mark.gen_test
async def test_nocase_migration_keeps_an_existing_clash_working(tmp_path, caplog) -> None:
    """An older SQLite database that already holds "Bob" and "bob": migration 10 leaves it
    working (both agents kept) and names the pair in the log."""
    from store import Store
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    await store.close()
    db_rows(url, "DROP INDEX service_user_name_nocase")
    db_rows(url, "DELETE FROM wolive_schema WHERE version >= 10")
    db_rows(url, "INSERT INTO wolive_service (user_name, nick_name, password, business_id, "
                 "level, parent_id) VALUES ('Bob', 'B', 'x', 'b', 'service', 0), "
                 "('bob', 'b', 'x', 'b', 'service', 0)")
    with caplog.at_level("WARNING", logger="wolive.store"):
        store = await Store.open(url)
        await store.close()
    assert "Bob, bob" in caplog.text or "bob, Bob" in caplog.text
    assert len(db_rows(url, "SELECT * FROM wolive_service")) == 2


@pytest.mark.gen_test
async def test_business_id_nocase_migration_keeps_an_existing_clash_working(tmp_path,
                                                                           caplog) -> None:
    """An older SQLite database that already holds businesses "Shop9" and "shop9":
    migration 14 leaves it working (both kept) and names the pair in the log; without a
    clash it makes the index, so a case variant is refused from then on."""
    from store import Store
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    await store.close()
    db_rows(url, "DROP INDEX business_id_nocase")
    db_rows(url, "DELETE FROM wolive_schema WHERE version >= 14")
    db_rows(url, "INSERT INTO wolive_business (business_id) VALUES ('Shop9'), ('shop9')")
    with caplog.at_level("WARNING", logger="wolive.store"):
        store = await Store.open(url)
        await store.close()
    assert "Shop9, shop9" in caplog.text or "shop9, Shop9" in caplog.text
    assert len(db_rows(url, "SELECT * FROM wolive_business")) == 2
    indexes = [r["name"] for r in db_rows(url, "SELECT name FROM sqlite_master "
                                               "WHERE type = 'index'")]
    assert "business_id_nocase" not in indexes
    db_rows(url, "DELETE FROM wolive_business WHERE business_id = 'Shop9'")
    db_rows(url, "DELETE FROM wolive_schema WHERE version >= 14")
    store = await Store.open(url)
    await store.close()
    with pytest.raises(Exception, match="UNIQUE"):
        db_rows(url, "INSERT INTO wolive_business (business_id) VALUES ('SHOP9')")

