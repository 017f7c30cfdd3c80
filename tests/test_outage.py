"""A database outage, with a MariaDB the test itself stops and starts (a TCP proxy in front of
the machine's server): every call answers 503 with `Retry-After` and a readable `{code,
msg}`, a console socket opened meanwhile is told and closed with a reconnect code (not
dropped), the outage is logged once (not a traceback per request), and the server recovers
by itself when the database is back, with nothing acknowledged lost."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from conftest import write_config
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

import wolive



class TcpProxy:
    """127.0.0.1:<port> → the MariaDB server; `stop()` refuses new connections and cuts the
    open ones (what a database crash looks like to the server), `start()` listens again on
    the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()
                self.writers.discard(dst)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@pytest.fixture
def proxy(io_loop: Any, fresh_mysql_db: str) -> Iterator[TcpProxy]:
    u = urlsplit(fresh_mysql_db)
    p = TcpProxy(u.hostname or "127.0.0.1", u.port or 3306)
    io_loop.run_sync(p.start)
    yield p
    if p.server is not None and p.server.is_serving():
        io_loop.run_sync(p.stop)


@pytest.fixture
def cfg(tmp_path: Path, fresh_mysql_db: str, proxy: TcpProxy) -> dict[str, Any]:
    """Overrides conftest's: the server reaches the database through the proxy."""
    u = urlsplit(fresh_mysql_db)
    via = f"mysql://{u.username or 'root'}:{u.password or ''}@127.0.0.1:{proxy.port}{u.path}"
    return wolive.load_config(str(write_config(tmp_path, via)))


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_database_outage_is_503_then_recovers_without_a_restart(
        boss: Client, base_url: str, ws_base: str, proxy: TcpProxy, fresh_mysql_db: str,
        caplog: pytest.LogCaptureFixture) -> None:
    agent_sock = await PusherSocket.connect(ws_base, cookie=boss.cookie_header())
    assert (await agent_sock.subscribe("kefu1"))["event"].endswith("subscription_succeeded")
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-outage")
    ids = {k: boot[k] for k in ("visiter_id", "business_id", "channel")}
    await wait_for(lambda: db_rows(fresh_mysql_db, "SELECT state FROM wolive_service")
                   [0]["state"] == "online")
    code, body = await visitor.json("/admin/event/notice", "POST", form=ids)
    assert body["code"] == 0, body
    code, body = await visitor.json("/admin/event/chats", "POST",
                                    form={**ids, "content": "before"})
    assert body["code"] == 0, body

    caplog.set_level(logging.WARNING, logger="wolive.store")
    await proxy.stop()
    calls = [
        (visitor, "/admin/event/chats", "POST", {**ids, "content": "during"}),
        (visitor, "/admin/event/history", "GET", ids),
        (boss, "/admin/set/getchats", "GET", {}),
        (boss, "/admin/set/chats", "POST", {"visiter_id": "v-outage", "content": "during"}),
    ]
    for client, path, method, form in calls * 2:
        resp = await client.fetch(path, method, form=form or None)
        assert resp.code == 503, (path, resp.code, resp.body[:200])
        assert resp.headers["Retry-After"] == "5"
        answer = json.loads(resp.body)
        assert answer["code"] == 1 and "unavailable" in answer["msg"], answer
    page = await boss.fetch("/admin/index/index")
    assert page.code == 503 and b"<" in page.body
    # A console socket opened now is told, then closed with a reconnect code.
    late = await PusherSocket.connect(ws_base, cookie=boss.cookie_header())
    told = await late.recv()
    assert told["event"] == "pusher:error" and told["data"]["code"] == 4100, told
    closed = await late.recv()
    assert closed == {"event": "__closed__", "code": 4100, "reason": closed["reason"]}
    outage_logs = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage_logs) == 1, [r.getMessage() for r in caplog.records]

    await proxy.start()
    code, body = await visitor.json("/admin/event/chats", "POST",
                                    form={**ids, "content": "after"})
    assert (code, body["code"]) == (200, 0), body
    assert [r["content"] for r in db_rows(
        fresh_mysql_db, "SELECT content FROM wolive_chats ORDER BY cid")] == ["before", "after"]
    assert any("database is back" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test(timeout=120)
async def test_presence_write_refused_by_a_locked_sqlite_is_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A presence write that meets SQLite "database is locked" past the busy timeout (a
    connect storm) is tried again until it lands, instead of leaving the state wrong."""
    import sqlite3

    from tornado.testing import bind_unused_port

    from handlers.http_server import HTTPServer
    db = f"sqlite:///{tmp_path}/data/wolive.db"
    server = await wolive.make_app(wolive.load_config(str(write_config(tmp_path, db))))
    sock, port = bind_unused_port()
    http = HTTPServer(server.app)
    http.add_sockets([sock])
    try:
        boss = Client(f"http://127.0.0.1:{port}")
        assert (await boss.install(BIZ, "boss", PASSWORD)).code == 302
        caplog.set_level(logging.WARNING, logger="wolive.store")
        lock = sqlite3.connect(tmp_path / "data" / "wolive.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        agent = await PusherSocket.connect(f"ws://127.0.0.1:{port}", cookie=boss.cookie_header())
        assert (await agent.subscribe("kefu1"))["event"].endswith("subscription_succeeded")
        await wait_for(lambda: any("database unavailable" in r.getMessage()
                                   for r in caplog.records), timeout=60)
        lock.execute("ROLLBACK")
        lock.close()
        await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service")[0]["state"]
                       == "online", timeout=30)
        agent.close()
    finally:
        http.stop()
        await http.close_all_connections()
        await server.stop()
