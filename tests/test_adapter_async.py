"""The adapter's cluster-wide answers are coroutines; a socket's frames stay in order.

An adapter for several nodes answers membership, presence and cache questions after a round
trip. `SuspendingAdapter` is the in-process adapter made to give the loop away (several
times) inside every such answer, as a remote one does, so these tests see what a session
does while its answers are on their way: frames handled in arrival order, the close after
them, and the HTTP API answering over it. The in-process adapter itself answers inline
(`run_inline`), which the rest of the suite runs on.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from realtime.pusher import http_api as pusher_api
from realtime.pusher.adapter import CachedEvent, Connection, LocalAdapter, run_inline
from realtime.pusher.hub import App, Hub, Session
from realtime.pusher.signing import channel_auth

from helpers import RecordingConn

APP = App("1", "key", "secret")


class SuspendingAdapter(LocalAdapter):
    """`LocalAdapter` whose answers each give the loop away `hops` times first."""

    inline = False

    def __init__(self, hops: int = 3) -> None:
        super().__init__()
        self.hops = hops

    async def _away(self) -> None:
        for _ in range(self.hops):
            await asyncio.sleep(0)

    async def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        await self._away()
        return await super().subscribe(app_id, channel, conn)

    async def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        await self._away()
        return await super().unsubscribe(app_id, channel, conn)

    async def add_member(self, app_id: str, channel: str, socket_id: str, user_id: str,
                         user_info: Any) -> bool:
        await self._away()
        return await super().add_member(app_id, channel, socket_id, user_id, user_info)

    async def remove_member(self, app_id: str, channel: str, socket_id: str) -> str | None:
        await self._away()
        return await super().remove_member(app_id, channel, socket_id)

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        await self._away()
        return await super().members(app_id, channel)

    async def subscription_count(self, app_id: str, channel: str) -> int:
        await self._away()
        return await super().subscription_count(app_id, channel)

    async def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        await self._away()
        return await super().channels(app_id, prefix)

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        await self._away()
        return await super().cache_get(app_id, channel)


def open_session(hub: Hub, socket_id: str) -> tuple[Session, RecordingConn]:
    conn = RecordingConn(socket_id)
    session = Session(hub=hub, app=APP, conn=conn)
    session.start()
    return session, conn


def presence_subscribe(session: Session, channel: str, user_id: str) -> None:
    data = json.dumps({"user_id": user_id, "user_info": {"name": user_id}})
    session.on_frame(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": channel_auth(APP.key, APP.secret, session.socket_id,
                                                 channel, data),
        "channel_data": data}}))


def private_subscribe(session: Session, channel: str) -> None:
    session.on_frame(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": channel,
        "auth": channel_auth(APP.key, APP.secret, session.socket_id, channel)}}))


def test_run_inline_gives_an_inline_coroutines_result_and_refuses_one_that_suspends() -> None:
    async def answer() -> int:
        return await LocalAdapter().subscription_count("1", "x") + 41

    assert run_inline(answer()) == 41

    async def away() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_inline(away())


@pytest.mark.gen_test(timeout=10)
async def test_a_client_event_right_after_a_subscribe_waits_for_it_and_is_relayed() -> None:
    hub = Hub([APP], adapter=SuspendingAdapter())
    a, a_conn = open_session(hub, "1.1")
    b, b_conn = open_session(hub, "1.2")
    ch = "private-room"
    private_subscribe(a, ch)
    # B's subscribe and its client event arrive in one go, before any answer is back.
    private_subscribe(b, ch)
    b.on_frame(json.dumps({"event": "client-hello", "channel": ch, "data": {"n": 1}}))
    b.on_frame(json.dumps({"event": "pusher:ping", "data": {}}))
    await a.settled()
    await b.settled()
    assert b_conn.names() == ["pusher:connection_established",
                               "pusher_internal:subscription_succeeded", "pusher:pong"]
    assert a_conn.names()[-1] == "client-hello"  # relayed, not refused, not echoed
    assert a_conn.frames[-1]["data"] == '{"n":1}'


@pytest.mark.gen_test(timeout=10)
async def test_presence_over_a_suspending_adapter_gives_members_and_events_in_order() -> None:
    hub = Hub([APP], adapter=SuspendingAdapter())
    happenings: list[str] = []
    hub.add_listener(lambda app, e: happenings.append(e["name"]))
    ch = "presence-team"
    sessions = [open_session(hub, f"1.{i}") for i in range(3)]
    for i, (s, _) in enumerate(sessions):
        presence_subscribe(s, ch, f"u{i}")
        await s.settled()
    first = sessions[0][1]
    assert first.names().count("pusher_internal:member_added") == 2
    last = sessions[2][1].frames[1]
    assert last["event"] == "pusher_internal:subscription_succeeded"
    assert json.loads(last["data"])["presence"]["ids"] == ["u0", "u1", "u2"]
    # A close while a frame is still being handled: the close waits for it, then leaves.
    s2, _ = sessions[2]
    s2.on_frame(json.dumps({"event": "pusher:ping", "data": {}}))
    s2.on_close()
    s2.on_frame(json.dumps({"event": "pusher:ping", "data": {}}))  # after close: ignored
    await s2.settled()
    assert first.frames[-1]["event"] == "pusher_internal:member_removed"
    assert await hub.members(APP, ch) == {"u0": {"name": "u0"}, "u1": {"name": "u1"}}
    for s, _ in sessions[:2]:
        s.on_close()
        await s.settled()
    assert happenings == ["channel_occupied", "member_added", "member_added",
                          "member_added", "member_removed", "member_removed",
                          "member_removed", "channel_vacated"]
    assert await hub.adapter.channels(APP.id) == {}


@pytest.mark.gen_test(timeout=10)
async def test_the_http_api_answers_over_a_suspending_adapter() -> None:
    hub = Hub([APP], adapter=SuspendingAdapter())
    s, _ = open_session(hub, "1.1")
    presence_subscribe(s, "presence-x", "u1")
    await s.settled()
    assert await pusher_api.channel(hub, APP, "presence-x",
                                    {"info": "user_count,subscription_count"}) == {
        "occupied": True, "user_count": 1, "subscription_count": 1}
    assert await pusher_api.channels(hub, APP, {"filter_by_prefix": "presence-",
                                                "info": "user_count"}) == {
        "channels": {"presence-x": {"user_count": 1}}}
    assert await pusher_api.users(hub, APP, "presence-x") == {"users": [{"id": "u1"}]}
    answer = await pusher_api.publish(hub, APP, {
        "name": "e", "data": "{}", "channels": ["presence-x"], "info": "subscription_count"})
    assert answer == {"channels": {"presence-x": {"subscription_count": 1}}}


@pytest.mark.allow_error_logs  # the failure is logged with its traceback
@pytest.mark.gen_test(timeout=10)
async def test_a_step_that_fails_closes_its_socket_with_a_reconnect_code() -> None:
    class Broken(SuspendingAdapter):
        async def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
            await self._away()
            raise ConnectionError("the cluster store went away")

    hub = Hub([APP], adapter=Broken())
    s, conn = open_session(hub, "1.1")
    s.on_frame(json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
    s.on_frame(json.dumps({"event": "pusher:ping", "data": {}}))
    await s.settled()
    assert conn.closed == 4200  # pusher-js reconnects at once and catches up
    assert conn.names()[-1] == "pusher:error"
    assert "pusher:pong" not in conn.names()
    assert s.closed and "1.1" not in hub.sessions


@pytest.mark.gen_test(timeout=10)
async def test_after_shutdown_settled_means_every_channel_was_left() -> None:
    hub = Hub([APP], adapter=SuspendingAdapter(hops=5))
    vacated: list[str] = []
    hub.add_listener(lambda app, e: vacated.append(e["channel"])
                     if e["name"] == "channel_vacated" else None)
    for i in range(5):
        s, _ = open_session(hub, f"1.{i}")
        private_subscribe(s, f"private-{i}")
        await s.settled()
    hub.shutdown()  # closes every socket: their leaves are still on their way
    assert vacated == []
    await hub.settled()
    assert sorted(vacated) == [f"private-{i}" for i in range(5)]
    assert await hub.adapter.channels(APP.id) == {}
