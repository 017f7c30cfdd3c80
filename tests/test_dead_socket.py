"""A console whose network silently died (no FIN, no more packets) goes offline (issue 9):
the server's WebSocket pings (`pusher.ping_interval_s`, `pusher.ping_timeout_s`) get no pong,
the socket is closed, the presence tracker writes the agent offline and pushes `logout`.

The dead network is a TCP proxy between the agent's socket and the server that the test
freezes: from then on it forwards nothing either way and closes nothing, as a laptop with
its lid shut. Timings come from config, small here; the test waits on the events."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from helpers import PusherSocket, db_rows, wait_for
from shop import SUBSCRIBED, Shop

import wolive

PING_S = 0.4
GRACE_S = 0.3
#: Tornado's close handshake waits up to 5 s for the peer before dropping the connection.
CLOSE_WAIT_S = 5.0


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"pusher.ping_interval_s": PING_S, "pusher.ping_timeout_s": PING_S}


class FreezableProxy:
    """Forwards TCP connections from a free local port to `port`; `freeze()` stops all
    forwarding (reads stop in both directions, nothing is closed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while not self.frozen.is_set():
            read = asyncio.ensure_future(src.read(65536))
            frozen = asyncio.ensure_future(self.frozen.wait())
            await asyncio.wait([read, frozen], return_when=asyncio.FIRST_COMPLETED)
            if self.frozen.is_set():
                read.cancel()
                return  # frozen: what arrives from now on stays in the kernel's buffers
            frozen.cancel()
            data = read.result()
            if not data:
                dst.close()
                return
            dst.write(data)

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()


@pytest.mark.gen_test(timeout=60)
async def test_console_on_a_dead_network_goes_offline(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, http_server: Any) -> None:
    wolive_server.presence.grace_s = GRACE_S
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    a = await s.agent("anna")
    proxy = FreezableProxy(http_server.port)
    port = await proxy.start()
    try:
        console = await PusherSocket.connect(f"ws://127.0.0.1:{port}",
                                             cookie=a.client.cookie_header())
        assert (await console.subscribe(f"kefu{a.sid}"))["event"] == SUBSCRIBED
        watcher = await PusherSocket.connect(ws_base)  # a visitor window, on a live network
        assert (await watcher.subscribe(f"se{a.sid}"))["event"] == SUBSCRIBED
        await wait_for(lambda: s.state(a) == "online")

        # Alive and silent for several ping rounds: the client answers the pings itself.
        await asyncio.sleep(PING_S * 4)
        assert s.state(a) == "online"

        proxy.freeze()
        loop = asyncio.get_running_loop()
        frozen_at = loop.time()
        frame = await watcher.expect("logout", f"se{a.sid}",
                                     timeout=PING_S * 2 + CLOSE_WAIT_S + GRACE_S + 10)
        took = loop.time() - frozen_at
        assert frame["data"] == {"service_id": a.sid, "state": "offline"}
        assert took <= PING_S * 2 + CLOSE_WAIT_S + GRACE_S + 2, took
        assert db_rows(s.db, "SELECT state FROM wolive_service WHERE service_id = %s",
                       (a.sid,))[0]["state"] == "offline"
        # New visitors are no longer given to it.
        body = await s.notice(await s.visitor("v1"))
        assert body["code"] in (2, 3), body
    finally:
        proxy.close()


def test_ping_config_is_checked(tmp_path: Path) -> None:
    path = str(write_config(tmp_path, "sqlite:///x.db"))
    shipped = wolive.load_config(path).pusher
    # The defaults close a dead socket well inside a minute (issue 9): interval + timeout +
    # the close handshake's wait + the presence grace.
    assert shipped.ping_interval_s + shipped.ping_timeout_s + CLOSE_WAIT_S + 3 <= 60
    for bad, key in (({"pusher.ping_interval_s": -1}, "pusher.ping_interval_s"),
                     ({"pusher.ping_interval_s": True}, "pusher.ping_interval_s"),
                     ({"pusher.ping_timeout_s": 30}, "pusher.ping_timeout_s"),
                     ({"pusher.ping_timeout_s": 0}, "pusher.ping_timeout_s")):
        with pytest.raises(wolive.ConfigProblem, match=key):
            wolive.load_config(path, bad)
    assert wolive.load_config(path, {"pusher.ping_interval_s": 0,
                                     "pusher.ping_timeout_s": 0}).pusher.ping_interval_s == 0
