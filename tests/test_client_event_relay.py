"""Client events are relayed at the end of the loop iteration, never held by the write window
(handlers/pusher.py `Outbox.relaying`; issue 11 item 5)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_pusher_protocol import (  # noqa: F401 (cfg: apps with known secrets)
    cfg,
    lib,
    private,
)


@pytest.mark.gen_test(timeout=30)
async def test_client_events_never_wait_for_the_write_window(
        wolive_server: Any, ws_base: str, base_url: str) -> None:
    """While published frames wait for the window (the last write was just now), a client
    event reaches the channel's other socket at once, after what that socket had waiting;
    the sender is not echoed; a publish queued after it still waits for the window."""
    client = lib(base_url)
    sender = await private(ws_base, client, "private-room")
    peer = await private(ws_base, client, "private-room")
    hub = wolive_server.hub
    conn = hub.adapter._apps["1"]["private-room"][peer.socket_id]
    outbox = conn.outbox
    loop = asyncio.get_running_loop()
    outbox.window = 30.0
    outbox.last_flush = loop.time()  # just written: published frames wait 30 s
    try:
        hub.trigger("private-room", "held", {"i": 0})
        await asyncio.sleep(0.05)
        await peer.nothing(0.1)  # the window holds the publish
        sender.send("client-hi", {"n": 1}, channel="private-room")
        first = await peer.recv(10)
        assert first["event"] == "held"  # let out with it, in order
        second = await peer.recv(10)
        assert (second["event"], second["data"]) == ("client-hi", {"n": 1})
        outbox.last_flush = loop.time()
        hub.trigger("private-room", "later", {})
        await peer.nothing(0.2)  # publishes still wait for the window
    finally:
        outbox.window = 0.0
        outbox.flush()
    assert (await peer.expect("later"))["event"] == "later"
