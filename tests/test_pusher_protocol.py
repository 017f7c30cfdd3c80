"""Pusher protocol conformance on the in-process server (SQLite and MariaDB): raw frames
through `helpers.PusherSocket`, signatures and the HTTP API through the official Python
`pusher` library (synchronous: run in an executor thread).

Covers presence (raw channel_data, member lists, member_added/removed rules, limits),
private-encrypted pass-through, cache channels, `pusher:signin` and `#server-to-user-`,
client events and their rate limit, silent-socket sweep, frame size, shutdown, all HTTP API
endpoints with their status codes, wolive's `/pusher/auth` and `/pusher/user-auth`, and the
hub events webhooks are built from. Rules: shared/PUSHER-COMPAT.md.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pusher
import pusher.crypto
import pytest
from conftest import write_config
from helpers import BIZ, PASSWORD, Client, PusherSocket, wait_for

import wolive
from realtime.pusher import protocol as p
from realtime.pusher.signing import channel_auth, derive_master_key
from realtime.pusher.adapter import run_inline

APPS = [
    {"id": "1", "key": "wolive", "secret": "secret-one"},
    {"id": "2", "key": "second", "secret": "secret-two"},
    {"id": "3", "key": "off", "secret": "secret-off", "enabled": False},
]
SUCCEEDED = "pusher_internal:subscription_succeeded"


@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> dict[str, Any]:
    """Overrides conftest's: three apps with known secrets (the third disabled)."""
    return wolive.load_config(str(write_config(tmp_path, db_url)),
                              overrides={"pusher.apps": [dict(a) for a in APPS]})


@pytest.fixture
def happenings(wolive_server: Any) -> list[dict[str, Any]]:
    """Every hub event (what webhooks are built from), as (app id, event) in order."""
    seen: list[dict[str, Any]] = []
    wolive_server.hub.add_listener(lambda app, event: seen.append({"app": app.id, **event}))
    return seen


def lib(base_url: str, app_id: str = "1", **kw: Any) -> pusher.Pusher:
    """The official Python library pointed at the test server; its encryption master key
    defaults to the one wolive derives from the secret (what `/pusher/auth` uses)."""
    app = next(a for a in APPS if a["id"] == app_id)
    kw.setdefault("encryption_master_key_base64",
                  base64.b64encode(derive_master_key(app["secret"])).decode())
    return pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"],
                         host="127.0.0.1", port=int(base_url.rsplit(":", 1)[1]), ssl=False,
                         **kw)


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


def raw_request(client: pusher.Pusher, method: str, path: str, params: dict[str, Any]) -> Any:
    """A signed request the library has no method for (or would refuse to build)."""
    from pusher.http import Request
    inner = client._pusher_client
    return inner.http.send_request(Request(inner, method, path, params))


async def join_presence(ws_base: str, client: pusher.Pusher, channel: str, user_id: Any,
                        info: Any = None, key: str = "wolive") -> tuple[PusherSocket, dict]:
    """A socket subscribed to a presence channel with the library's own signature (its
    channel_data has spaces: `json.dumps` defaults)."""
    sock = await PusherSocket.connect(ws_base, key=key)
    member = {"user_id": user_id} if info is None else {"user_id": user_id, "user_info": info}
    signed = client.authenticate(channel, sock.socket_id, member)
    assert ", " in signed["channel_data"] or len(member) == 1
    sock.send("pusher:subscribe", {"channel": channel, "auth": signed["auth"],
                                   "channel_data": signed["channel_data"]})
    answer = await sock.expect(SUCCEEDED, channel)
    return sock, answer


async def private(ws_base: str, client: pusher.Pusher, channel: str,
                  key: str = "wolive") -> PusherSocket:
    sock = await PusherSocket.connect(ws_base, key=key)
    answer = await sock.subscribe(channel, client.authenticate(channel, sock.socket_id)["auth"])
    assert answer["event"] == SUCCEEDED, answer
    return sock


def names(happenings: list[dict[str, Any]], *kinds: str) -> list[tuple[str, ...]]:
    return [tuple(str(h.get(k, "")) for k in ("name", "channel", "user_id"))
            for h in happenings if h["name"] in kinds]


# ---- presence -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_presence_members_and_member_events(ws_base: str, base_url: str,
                                                  happenings: list) -> None:
    client = lib(base_url)
    ch = "presence-room"
    a, first = await join_presence(ws_base, client, ch, "u1", {"name": "Ann"})
    assert first["data"] == {"presence": {"ids": ["u1"], "hash": {"u1": {"name": "Ann"}},
                                          "count": 1}}
    b, second = await join_presence(ws_base, client, ch, "u2", {"name": "Bo 🎉"})
    assert second["data"]["presence"] == {"ids": ["u1", "u2"], "count": 2, "hash": {
        "u1": {"name": "Ann"}, "u2": {"name": "Bo 🎉"}}}
    added = await a.expect("pusher_internal:member_added", ch)
    assert added["data"] == {"user_id": "u2", "user_info": {"name": "Bo 🎉"}}
    await b.nothing()  # never to the socket that caused it

    # u2 again on a second socket: not a new member, so nobody hears of it.
    b2, third = await join_presence(ws_base, client, ch, "u2", {"name": "Bo 🎉"})
    assert third["data"]["presence"]["count"] == 2
    await a.nothing()
    await b.nothing()
    # It leaves: u2 still has a socket there, so no member_removed.
    b2.send("pusher:unsubscribe", {"channel": ch})
    await a.nothing()
    # u2's last socket goes: member_removed to the others only.
    b.close()
    removed = await a.expect("pusher_internal:member_removed", ch)
    assert removed["data"] == {"user_id": "u2"}
    await b2.nothing()
    assert names(happenings, "member_added", "member_removed") == [
        ("member_added", ch, "u1"), ("member_added", ch, "u2"), ("member_removed", ch, "u2")]
    # Webhook order: the channel is occupied before its first member is added.
    kinds = [h["name"] for h in happenings if h.get("channel") == ch]
    assert kinds[:2] == ["channel_occupied", "member_added"]
    a.close()
    await asyncio.sleep(0.1)
    assert [h["name"] for h in happenings if h.get("channel") == ch][-2:] == [
        "member_removed", "channel_vacated"]


@pytest.mark.gen_test
async def test_presence_signature_covers_the_raw_channel_data(ws_base: str,
                                                              base_url: str) -> None:
    client = lib(base_url)
    ch = "presence-raw"
    sock = await PusherSocket.connect(ws_base)
    signed = client.authenticate(ch, sock.socket_id, {"user_id": "u1", "user_info": {"a": 1}})
    assert signed["channel_data"] == '{"user_id": "u1", "user_info": {"a": 1}}'
    compact = json.dumps(json.loads(signed["channel_data"]), separators=(",", ":"))
    for bad in (compact, signed["channel_data"].replace("u1", "u2")):
        sock.send("pusher:subscribe", {"channel": ch, "auth": signed["auth"],
                                       "channel_data": bad})
        answer = await sock.expect("pusher:subscription_error", ch)
        assert answer["data"]["status"] == 401
        assert signed["auth"].split(":")[1] not in json.dumps(answer)
    sock.send("pusher:subscribe", {"channel": ch, "auth": signed["auth"],
                                   "channel_data": signed["channel_data"]})
    ok = await sock.expect(SUCCEEDED, ch)
    assert ok["data"]["presence"]["hash"] == {"u1": {"a": 1}}
    # An integer user_id (common in PHP/Laravel backends) is carried as a string.
    _other, answer = await join_presence(ws_base, client, ch, 42)
    assert answer["data"]["presence"]["ids"] == ["u1", "42"]
    assert (await sock.expect("pusher_internal:member_added", ch))["data"]["user_id"] == "42"


@pytest.mark.gen_test
async def test_presence_refusals(ws_base: str, wolive_server: Any) -> None:
    ch = "presence-strict"
    sock = await PusherSocket.connect(ws_base)
    app = wolive_server.hub.default_app

    async def try_data(channel_data: str | None, signed: bool = True) -> dict[str, Any]:
        auth = channel_auth(app.key, app.secret, sock.socket_id, ch, channel_data) \
            if signed else f"{app.key}:{'0' * 64}"
        data: dict[str, Any] = {"channel": ch, "auth": auth}
        if channel_data is not None:
            data["channel_data"] = channel_data
        sock.send("pusher:subscribe", data)
        frame = await sock.expect("pusher:subscription_error", ch)
        return frame["data"]

    assert (await try_data(None))["status"] == 400  # no channel_data and not signed in
    assert (await try_data("not json"))["status"] == 400
    assert (await try_data('{"user_info": {}}'))["status"] == 400
    assert (await try_data('{"user_id": ""}'))["status"] == 400
    assert (await try_data('{"user_id": "x"}', signed=False))["status"] == 401
    big = json.dumps({"user_id": "x", "user_info": {"bio": "x" * p.MAX_USER_INFO_BYTES}})
    too_big = await try_data(big)
    assert too_big["status"] == 413 and too_big["type"] == "LimitReached"
    # Exactly at the limit is fine.
    info = {"bio": "x" * (p.MAX_USER_INFO_BYTES - len('{"bio":""}'))}
    assert p.json_size(info) == p.MAX_USER_INFO_BYTES
    fits = json.dumps({"user_id": "x", "user_info": info})
    sock.send("pusher:subscribe", {"channel": ch, "auth": channel_auth(
        app.key, app.secret, sock.socket_id, ch, fits), "channel_data": fits})
    await sock.expect(SUCCEEDED, ch)
    # Nothing was half-joined by the refusals.
    assert run_inline(wolive_server.hub.members(app, ch)) == {"x": info}


@pytest.mark.gen_test(timeout=60)
async def test_presence_channel_holds_at_most_100_members(ws_base: str, base_url: str,
                                                          wolive_server: Any) -> None:
    client = lib(base_url)
    ch = "presence-crowd"
    socks = []
    for i in range(p.MAX_PRESENCE_MEMBERS):
        sock, answer = await join_presence(ws_base, client, ch, f"u{i}")
        socks.append(sock)
    assert answer["data"]["presence"]["count"] == 100
    late = await PusherSocket.connect(ws_base)
    signed = client.authenticate(ch, late.socket_id, {"user_id": "u100"})
    late.send("pusher:subscribe", {"channel": ch, **signed})
    refused = await late.expect("pusher:subscription_error", ch)
    assert refused["data"]["type"] == "LimitReached" and refused["data"]["status"] == 403
    # A member already there may add a socket: it is not a new member.
    _again, answer = await join_presence(ws_base, client, ch, "u7")
    assert answer["data"]["presence"]["count"] == 100
    assert len(run_inline(wolive_server.hub.members(wolive_server.hub.default_app, ch))) == 100
    # One leaves; now there is room.
    socks[0].close()
    await socks[1].expect("pusher_internal:member_removed", ch)
    _late, answer = await join_presence(ws_base, client, ch, "u100")
    assert answer["data"]["presence"]["count"] == 100


# ---- private-encrypted --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_private_encrypted_passes_ciphertext_through(ws_base: str,
                                                           base_url: str) -> None:
    master = base64.b64encode(b"k" * 32).decode()
    client = lib(base_url, encryption_master_key_base64=master)
    ch = "private-encrypted-vault"
    sock = await PusherSocket.connect(ws_base)
    bad = await sock.subscribe(ch, f"wolive:{'0' * 64}")
    assert bad["event"] == "pusher:subscription_error" and bad["data"]["status"] == 401
    signed = client.authenticate(ch, sock.socket_id)
    assert "shared_secret" in signed  # what pusher-js decrypts with (never sent to us)
    assert (await sock.subscribe(ch, signed["auth"]))["event"] == SUCCEEDED
    other = await private(ws_base, client, ch)
    await in_thread(client.trigger, ch, "secret", {"pin": "1234"})
    frame = await sock.expect("secret", ch)
    assert set(frame["data"]) == {"nonce", "ciphertext"}  # the server saw only ciphertext
    shared = pusher.crypto.generate_shared_secret(ch.encode(), base64.b64decode(master))
    import nacl.secret
    plain = nacl.secret.SecretBox(shared).decrypt(
        base64.b64decode(frame["data"]["ciphertext"]), base64.b64decode(frame["data"]["nonce"]))
    assert json.loads(plain) == {"pin": "1234"}
    # No client events on encrypted channels: refused, not delivered.
    sock.send("client-peek", {"x": 1}, channel=ch)
    err = await sock.expect("pusher:error")
    assert "private- and presence-" in err["data"]["message"]
    await other.expect("secret", ch)
    await other.nothing()


# ---- cache channels -----------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("ch", ["cache-news", "private-cache-news", "presence-cache-news",
                                "private-encrypted-cache-news"])
async def test_cache_channel_replays_last_event_or_says_cache_miss(
        ws_base: str, base_url: str, wolive_server: Any, happenings: list, ch: str) -> None:
    client = lib(base_url)

    async def subscribe(user: str) -> PusherSocket:
        if ch.startswith("presence-"):
            sock, _ = await join_presence(ws_base, client, ch, user)
            return sock
        if ch.startswith("private-"):
            return await private(ws_base, client, ch)
        sock = await PusherSocket.connect(ws_base)
        assert (await sock.subscribe(ch))["event"] == SUCCEEDED
        return sock

    first = await subscribe("u1")
    miss = await first.recv()
    assert miss == {"event": "pusher:cache_miss", "channel": ch}
    assert [h for h in happenings if h["name"] == "cache_miss"] == [
        {"app": "1", "name": "cache_miss", "channel": ch}]
    data = json.dumps({"price": 1})
    await in_thread(raw_request, client, "POST", "/apps/1/events",
                    {"name": "tick", "channels": [ch], "data": data})
    assert (await first.expect("tick", ch))["data"] == {"price": 1}
    await in_thread(raw_request, client, "POST", "/apps/1/events",
                    {"name": "tick", "channels": [ch], "data": json.dumps({"price": 2})})
    await first.expect("tick", ch)
    # A newcomer gets the last event, as that event, right after subscribing.
    second = await subscribe("u2")
    replay = await second.recv()
    assert replay == {"event": "tick", "channel": ch, "data": {"price": 2}}
    await second.nothing()
    assert len([h for h in happenings if h["name"] == "cache_miss"]) == 1
    # Expired after 30 minutes.
    adapter = wolive_server.hub.adapter
    real = adapter.clock
    adapter.clock = lambda: real() + p.CACHE_TTL_S + 1
    try:
        third = await subscribe("u3")
        assert await third.recv() == {"event": "pusher:cache_miss", "channel": ch}
    finally:
        adapter.clock = real


@pytest.mark.gen_test
async def test_ordinary_channels_have_no_cache(ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    await in_thread(client.trigger, "news", "tick", {"n": 1})
    sock = await PusherSocket.connect(ws_base)
    assert (await sock.subscribe("news"))["event"] == SUCCEEDED
    await sock.nothing()


# ---- sign-in and #server-to-user- ---------------------------------------------------------

async def signin(sock: PusherSocket, client: pusher.Pusher, user: dict[str, Any]) -> dict:
    signed = client.authenticate_user(sock.socket_id, user)
    sock.send("pusher:signin", signed)
    frame = await sock.expect("pusher:signin_success")
    assert frame["data"] == {"user_data": signed["user_data"]}
    return signed


@pytest.mark.gen_test
async def test_signin_and_server_to_user_channel(ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    me = await PusherSocket.connect(ws_base)
    stranger = await PusherSocket.connect(ws_base)
    impostor = await PusherSocket.connect(ws_base)
    ch = "#server-to-user-u-9"
    # Not signed in: refused.
    refused = await stranger.subscribe(ch)
    assert refused["event"] == "pusher:subscription_error" and refused["data"]["status"] == 403
    await signin(me, client, {"id": "u-9", "user_info": {"name": "Nine"}})
    await signin(impostor, client, {"id": "u-10"})
    refused = await impostor.subscribe(ch)
    assert refused["event"] == "pusher:subscription_error" and refused["data"]["status"] == 403
    assert (await me.subscribe(ch))["event"] == SUCCEEDED
    await in_thread(client.trigger, ch, "hello", {"to": "u-9"})
    assert (await me.expect("hello", ch))["data"] == {"to": "u-9"}
    await stranger.nothing()
    await impostor.nothing()


@pytest.mark.gen_test
async def test_bad_signin_is_an_error_but_keeps_the_socket(ws_base: str, base_url: str,
                                                           wolive_server: Any) -> None:
    client = lib(base_url)
    sock = await PusherSocket.connect(ws_base)
    good = client.authenticate_user(sock.socket_id, {"id": "u1"})
    for data in ({"auth": good["auth"], "user_data": good["user_data"].replace("u1", "u2")},
                 {"auth": "wolive:" + "0" * 64, "user_data": good["user_data"]},
                 {"auth": good["auth"]}, "nonsense"):
        sock.send("pusher:signin", data)
        err = await sock.expect("pusher:error")
        assert err["data"]["code"] == 4009
        assert good["auth"].split(":")[1] not in json.dumps(err)
    # user_data without an id, correctly signed: refused too.
    app = wolive_server.hub.default_app
    from realtime.pusher.signing import user_auth
    raw = '{"user_info":{}}'
    sock.send("pusher:signin", {"auth": user_auth(app.key, app.secret, sock.socket_id, raw),
                                "user_data": raw})
    assert (await sock.expect("pusher:error"))["data"]["code"] == 4009
    sock.send("pusher:ping", {})
    await sock.expect("pusher:pong")
    await signin(sock, client, {"id": "u1"})


@pytest.mark.gen_test
async def test_signed_in_socket_joins_presence_without_channel_data(
        ws_base: str, base_url: str, wolive_server: Any) -> None:
    """pusher-js 8: after `signin()`, an auth answer without channel_data joins as the
    signed-in user."""
    client = lib(base_url)
    sock = await PusherSocket.connect(ws_base)
    await signin(sock, client, {"id": "u-5", "user_info": {"name": "Five"}})
    ch = "presence-lobby"
    sock.send("pusher:subscribe", {"channel": ch, **client.authenticate(ch, sock.socket_id)})
    ok = await sock.expect(SUCCEEDED, ch)
    assert ok["data"]["presence"]["hash"] == {"u-5": {"name": "Five"}}


# ---- client events ------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_client_events_rules(ws_base: str, base_url: str, happenings: list) -> None:
    client = lib(base_url)
    ch = "private-chat"
    a = await private(ws_base, client, ch)
    b = await private(ws_base, client, ch)
    a.send("client-typing", {"who": "a"}, channel=ch)
    got = await b.expect("client-typing", ch)
    assert got["data"] == {"who": "a"} and "user_id" not in got
    await a.nothing()  # never echoed
    assert [h for h in happenings if h["name"] == "client_event"] == [{
        "app": "1", "name": "client_event", "channel": ch, "event": "client-typing",
        "data": '{"who":"a"}', "socket_id": a.socket_id}]

    # Refusals: each is a pusher:error, nothing is delivered, the socket stays open.
    pub = "public-room"
    assert (await a.subscribe(pub))["event"] == SUCCEEDED
    assert (await b.subscribe(pub))["event"] == SUCCEEDED
    refusals = [
        ({"event": "client-x", "channel": pub, "data": {}}, "private- and presence-"),
        ({"event": "client-x", "channel": "private-elsewhere", "data": {}}, "subscribe"),
        ({"event": "client-x", "data": {}}, "subscribe"),
        ({"event": "client-" + "x" * 200, "channel": ch, "data": {}}, "200"),
        ({"event": "client-x", "channel": ch, "data": "x" * (p.MAX_EVENT_DATA_BYTES + 1)},
         "10 KB"),
        ({"event": "typing", "channel": ch, "data": {}}, "Unsupported"),
    ]
    for frame, words in refusals:
        a.conn.write_message(json.dumps(frame))
        err = await a.expect("pusher:error")
        assert words in err["data"]["message"], (frame["event"], err)
    await b.nothing()
    # Data passes as sent: a string stays a string.
    a.send("client-note", "plain text", channel=ch)
    raw = await b.expect("client-note", ch)
    assert raw["data"] == "plain text"


@pytest.mark.gen_test
async def test_client_events_on_presence_carry_user_id(ws_base: str, base_url: str,
                                                       happenings: list) -> None:
    client = lib(base_url)
    ch = "presence-team"
    a, _ = await join_presence(ws_base, client, ch, "alice")
    b, _ = await join_presence(ws_base, client, ch, "bob")
    await a.expect("pusher_internal:member_added", ch)
    b.send("client-wave", {"hi": True}, channel=ch)
    got = await a.expect("client-wave", ch)
    assert got["user_id"] == "bob" and got["data"] == {"hi": True}
    await b.nothing()
    event = [h for h in happenings if h["name"] == "client_event"][-1]
    assert event["user_id"] == "bob" and event["socket_id"] == b.socket_id


@pytest.mark.gen_test
async def test_client_event_rate_limit_is_4301_without_closing(ws_base: str,
                                                               base_url: str) -> None:
    client = lib(base_url)
    ch = "private-burst"
    a = await private(ws_base, client, ch)
    b = await private(ws_base, client, ch)
    burst = p.MAX_CLIENT_EVENTS_PER_WINDOW + 3
    for i in range(burst):
        a.send("client-n", {"i": i}, channel=ch)
    received = [(await b.expect("client-n", ch))["data"]["i"]
                for _ in range(p.MAX_CLIENT_EVENTS_PER_WINDOW)]
    assert received == list(range(p.MAX_CLIENT_EVENTS_PER_WINDOW))
    await b.nothing(0.3)
    errors = [await a.expect("pusher:error") for _ in range(3)]
    assert {e["data"]["code"] for e in errors} == {4301}
    # Still open, and after the window it may send again.
    a.send("pusher:ping", {})
    await a.expect("pusher:pong")
    await asyncio.sleep(p.CLIENT_EVENT_WINDOW_S)
    a.send("client-n", {"i": "later"}, channel=ch)
    assert (await b.expect("client-n", ch))["data"] == {"i": "later"}
    assert a.conn.close_code is None


# ---- connection life ----------------------------------------------------------------------

@pytest.mark.gen_test
async def test_silent_sockets_are_closed_with_4201(ws_base: str, base_url: str,
                                                   wolive_server: Any) -> None:
    hub = wolive_server.hub
    client = lib(base_url)
    ch = "presence-sweep"
    silent, _ = await join_presence(ws_base, client, ch, "quiet")
    lively, _ = await join_presence(ws_base, client, ch, "chatty")
    await silent.expect("pusher_internal:member_added", ch)
    assert hub.sweep() == 0  # nobody is silent yet
    assert hub.sweep(now=time.monotonic() + p.ACTIVITY_TIMEOUT_S) == 0  # within the grace
    # The silent one has said nothing for activity_timeout + grace + 1 s.
    hub.sessions[silent.socket_id].last_seen -= p.ACTIVITY_TIMEOUT_S + p.DEAD_SOCKET_GRACE_S + 1
    assert hub.sweep() == 1
    err = await silent.expect("pusher:error")
    assert err["data"]["code"] == 4201
    closed = await silent.recv()
    assert closed["event"] == "__closed__" and closed["code"] == 4201
    assert (await lively.expect("pusher_internal:member_removed", ch))["data"] == {
        "user_id": "quiet"}
    lively.send("pusher:ping", {})
    await lively.expect("pusher:pong")
    # A later sweep, far in the future, takes the rest.
    assert hub.sweep(now=time.monotonic() + 10_000) == 1
    assert (await lively.expect("pusher:error"))["data"]["code"] == 4201


@pytest.mark.gen_test
async def test_websocket_ping_frames_count_as_activity(ws_base: str,
                                                       wolive_server: Any) -> None:
    """A native client that keeps its link alive with WebSocket ping frames (and never sends
    `pusher:ping`) is not swept; one that sends nothing at all is."""
    hub = wolive_server.hub
    native = await PusherSocket.connect(ws_base)
    mute = await PusherSocket.connect(ws_base)
    long_ago = p.ACTIVITY_TIMEOUT_S + p.DEAD_SOCKET_GRACE_S + 1
    for sock in (native, mute):
        hub.sessions[sock.socket_id].last_seen -= long_ago
    stale = hub.sessions[native.socket_id].last_seen
    native.conn.ping(b"alive?")
    await wait_for(lambda: hub.sessions[native.socket_id].last_seen > stale)
    assert hub.sweep() == 1
    assert (await mute.expect("pusher:error"))["data"]["code"] == 4201
    native.send("pusher:ping", {})
    await native.expect("pusher:pong")


@pytest.mark.gen_test
async def test_oversized_frames_get_an_error_not_a_crash(ws_base: str) -> None:
    a = await PusherSocket.connect(ws_base)
    b = await PusherSocket.connect(ws_base)
    assert (await b.subscribe("news"))["event"] == SUCCEEDED
    # Over the protocol limit but under the transport's: an error, the socket stays.
    big = json.dumps({"event": "pusher:ping", "data": {"pad": "x" * p.MAX_PROTOCOL_FRAME_BYTES}})
    a.conn.write_message(big)
    err = await a.expect("pusher:error")
    assert err["data"]["code"] == 4000 and "Frame over" in err["data"]["message"]
    # Multi-byte characters count as bytes.
    wide = json.dumps({"event": "pusher:ping", "data": {"pad": "字" * 11000}},
                      ensure_ascii=False)
    assert len(wide) < p.MAX_PROTOCOL_FRAME_BYTES < len(wide.encode())
    a.conn.write_message(wide)
    assert (await a.expect("pusher:error"))["data"]["code"] == 4000
    a.send("pusher:ping", {})
    await a.expect("pusher:pong")
    # Over the transport limit: that socket is closed (1009), nobody else notices.
    a.conn.write_message("x" * (p.MAX_FRAME_BYTES + 1))
    closed = await a.recv()
    assert closed["event"] == "__closed__" and closed["code"] == 1009
    b.send("pusher:ping", {})
    await b.expect("pusher:pong")
    c = await PusherSocket.connect(ws_base)
    assert (await c.subscribe("news"))["event"] == SUCCEEDED


@pytest.mark.gen_test
async def test_shutdown_closes_with_4200_and_refuses_new_sockets(
        ws_base: str, base_url: str, wolive_server: Any) -> None:
    socks = [await PusherSocket.connect(ws_base) for _ in range(2)]
    await socks[0].subscribe("news")
    wolive_server.hub.shutdown()
    for sock in socks:
        assert (await sock.expect("pusher:error"))["data"]["code"] == 4200
        closed = await sock.recv()
        assert closed["event"] == "__closed__" and closed["code"] == 4200
    late = await PusherSocket.connect(ws_base)
    frame = await late.recv()
    assert frame["event"] == "pusher:error" and frame["data"]["code"] == 4200
    assert (await late.recv())["code"] == 4200
    # A publish now would reach nobody: 503, for the publisher to send it again.
    for call in (lambda: lib(base_url).trigger("news", "late", {}),
                 lambda: lib(base_url).trigger_batch([{"channel": "news", "name": "late",
                                                       "data": "1"}])):
        with pytest.raises(pusher.errors.PusherBadStatus, match="503.*shutting down"):
            await in_thread(call)


# ---- HTTP API -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_events_with_info_and_server_to_user_channel(ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    ch = "presence-info"
    await join_presence(ws_base, client, ch, "u1")
    await join_presence(ws_base, client, ch, "u1")
    news = await PusherSocket.connect(ws_base)
    await news.subscribe("news")
    answer = await in_thread(raw_request, client, "POST", "/apps/1/events", {
        "name": "e", "channels": [ch, "news", "empty"], "data": "{}",
        "info": "user_count,subscription_count"})
    assert answer == {"channels": {ch: {"user_count": 1, "subscription_count": 2},
                                   "news": {"subscription_count": 1},
                                   "empty": {"subscription_count": 0}}}
    # Without info: {} (what every library expects).
    assert await in_thread(client.trigger, "news", "e", {}) == {}
    # Node's sendToUser publishes to #server-to-user-<id> through /events.
    me = await PusherSocket.connect(ws_base)
    await signin(me, client, {"id": "agent-1"})
    await me.subscribe("#server-to-user-agent-1")
    assert await in_thread(raw_request, client, "POST", "/apps/1/events", {
        "name": "dm", "channels": ["#server-to-user-agent-1"], "data": '{"n":1}'}) == {}
    assert (await me.expect("dm"))["data"] == {"n": 1}


@pytest.mark.gen_test
async def test_batch_events(ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    a = await PusherSocket.connect(ws_base)
    await a.subscribe("news")
    await a.subscribe("sport")
    batch = [{"channel": "news", "name": "n1", "data": {"i": 1}},
             {"channel": "sport", "name": "s1", "data": {"i": 2}, "socket_id": a.socket_id},
             {"channel": "sport", "name": "s2", "data": {"i": 3}}]
    assert await in_thread(client.trigger_batch, batch) == {"batch": [{}, {}, {}]}
    assert (await a.expect("n1", "news"))["data"] == {"i": 1}
    assert (await a.expect("s2", "sport"))["data"] == {"i": 3}
    await a.nothing()  # s1 excluded its socket
    info = await in_thread(raw_request, client, "POST", "/apps/1/batch_events", {"batch": [
        {"channel": "news", "name": "n", "data": "1", "info": "subscription_count"},
        {"channel": "news", "name": "n", "data": "2"}]})
    assert info == {"batch": [{"subscription_count": 1}, {}]}
    assert [(await a.expect("n", "news"))["data"] for _ in range(2)] == [1, 2]
    # Refused whole, nothing sent: 11 events, a bad one, one over 10 KB, not a list.
    for body, error in [
        ({"batch": [{"channel": "news", "name": "n", "data": "x"}] * 11},
         pusher.errors.PusherBadRequest),
        ({"batch": [{"channel": "news", "name": "n", "data": "x"},
                    {"channel": "bad name!", "name": "n", "data": "x"}]},
         pusher.errors.PusherBadRequest),
        ({"batch": [{"channel": "news", "name": "n", "data": "x"},
                    {"channel": "news", "name": "n", "data": "x" * 10241}]},
         pusher.errors.PusherBadStatus),
        ({"batch": {"channel": "news"}}, pusher.errors.PusherBadRequest),
        ({"batch": []}, pusher.errors.PusherBadRequest),
    ]:
        with pytest.raises(error) as caught:
            await in_thread(raw_request, client, "POST", "/apps/1/batch_events", body)
        assert "error" in str(caught.value)
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await in_thread(raw_request, client, "POST", "/apps/1/batch_events", {"batch": [
            {"channel": "news", "name": "n", "data": "x" * 10241}]})
    await a.nothing()


@pytest.mark.gen_test
async def test_channel_queries(ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    ch = "presence-q"
    await join_presence(ws_base, client, ch, "u1")
    await join_presence(ws_base, client, ch, "u2")
    await join_presence(ws_base, client, ch, "u2")
    news = await PusherSocket.connect(ws_base)
    await news.subscribe("news")
    await private(ws_base, client, "private-q")
    me = await PusherSocket.connect(ws_base)
    await signin(me, client, {"id": "u1"})
    await me.subscribe("#server-to-user-u1")

    assert await in_thread(client.channels_info) == {"channels": {
        ch: {}, "news": {}, "private-q": {}}}
    assert await in_thread(client.channels_info, "presence-", ["user_count"]) == {
        "channels": {ch: {"user_count": 2}}}
    assert await in_thread(client.channels_info, "new") == {"channels": {"news": {}}}
    with pytest.raises(pusher.errors.PusherBadRequest):
        await in_thread(client.channels_info, None, ["user_count"])
    with pytest.raises(pusher.errors.PusherBadRequest):
        await in_thread(client.channels_info, "private-", ["user_count"])

    assert await in_thread(client.channel_info, ch, ["user_count", "subscription_count"]) \
        == {"occupied": True, "user_count": 2, "subscription_count": 3}
    assert await in_thread(client.channel_info, ch) == {"occupied": True}
    assert await in_thread(client.channel_info, "news", ["subscription_count"]) == {
        "occupied": True, "subscription_count": 1}
    assert await in_thread(client.channel_info, "nobody-here") == {"occupied": False}
    with pytest.raises(pusher.errors.PusherBadRequest):
        await in_thread(client.channel_info, "news", ["user_count"])
    # A name no channel can have (the library would refuse to build it): 400.
    for bad in ("/apps/1/channels/%00", "/apps/1/channels/" + "x" * 300):
        with pytest.raises(pusher.errors.PusherBadRequest):
            await in_thread(raw_request, client, "GET", bad, {})

    assert await in_thread(client.users_info, ch) == {"users": [{"id": "u1"}, {"id": "u2"}]}
    assert await in_thread(client.users_info, "presence-empty") == {"users": []}
    with pytest.raises(pusher.errors.PusherBadRequest):
        await in_thread(client.users_info, "news")
    # The other app sees none of this app's channels.
    assert await in_thread(lib(base_url, "2").channels_info) == {"channels": {}}


@pytest.mark.gen_test
async def test_terminate_user_connections(ws_base: str, base_url: str) -> None:
    one, two = lib(base_url, "1"), lib(base_url, "2")
    victim_a = await PusherSocket.connect(ws_base)
    victim_b = await PusherSocket.connect(ws_base)
    bystander = await PusherSocket.connect(ws_base)
    same_id_other_app = await PusherSocket.connect(ws_base, key="second")
    for sock in (victim_a, victim_b):
        await signin(sock, one, {"id": "u-bad"})
    await signin(bystander, one, {"id": "u-good"})
    await signin(same_id_other_app, two, {"id": "u-bad"})
    # The Python library posts to /users/{id}/terminate_connections (no /apps/{id}).
    assert await in_thread(one.terminate_user_connections, "u-bad") == {}
    for sock in (victim_a, victim_b):
        assert (await sock.expect("pusher:error"))["data"]["code"] == 4009
        closed = await sock.recv()
        assert closed["event"] == "__closed__" and closed["code"] == 4009
    for sock in (bystander, same_id_other_app):
        sock.send("pusher:ping", {})
        await sock.expect("pusher:pong")
    # The Node library's path, with the app prefix.
    assert await in_thread(raw_request, two, "POST", "/apps/2/users/u-bad/terminate_connections",
                           {}) == {}
    assert (await same_id_other_app.expect("pusher:error"))["data"]["code"] == 4009
    # An auth_key no app has: 401.
    unknown = pusher.Pusher(app_id="1", key="nokey", secret="x", host="127.0.0.1",
                            port=int(base_url.rsplit(":", 1)[1]), ssl=False)
    with pytest.raises(pusher.errors.PusherBadAuth):
        await in_thread(unknown.terminate_user_connections, "u")


@pytest.mark.gen_test
async def test_api_status_codes_and_json_bodies(ws_base: str, base_url: str) -> None:
    c = Client(base_url)
    # 403 disabled app: over HTTP and on the socket.
    with pytest.raises(pusher.errors.PusherForbidden):
        await in_thread(lib(base_url, "3").trigger, "news", "e", {})
    off = await PusherSocket.connect(ws_base, key="off")
    first = await off.recv()
    assert first["event"] == "pusher:error" and first["data"]["code"] == 4003
    # 404 unknown app, 401 unsigned, 405 wrong method: JSON every time.
    for path, method, status in [("/apps/99/events", "POST", 404),
                                 ("/apps/1/channels", "GET", 401),
                                 ("/apps/1/channels/news/users", "GET", 401),
                                 ("/users/u1/terminate_connections", "POST", 401),
                                 ("/apps/1/batch_events", "POST", 401)]:
        resp = await c.fetch(path, method, body=b"{}" if method == "POST" else None,
                             headers={"Content-Type": "application/json"})
        assert resp.code == status, (path, resp.code, resp.body)
        assert resp.headers["Content-Type"].startswith("application/json")
        assert "error" in json.loads(resp.body)
    # A signed GET to a POST-only URL.
    with pytest.raises(pusher.errors.PusherBadStatus, match="405"):
        await in_thread(raw_request, lib(base_url), "GET", "/apps/1/events", {})
    # 400 for a body that is not JSON, with a correct signature.
    from pusher.http import Request
    inner = lib(base_url)._pusher_client
    req = Request(inner, "POST", "/apps/1/events", {})
    req.body = b"not json"
    req.body_md5 = hashlib.md5(req.body).hexdigest()
    req.query_params = {}
    req._generate_auth()
    with pytest.raises(pusher.errors.PusherBadRequest):
        await in_thread(inner.http.send_request, req)
    # 413 for a body far over any legal size, before parsing.
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await in_thread(raw_request, lib(base_url), "POST", "/apps/1/events",
                        {"name": "e", "channel": "news", "data": "x" * 300_000})
    # Bad socket_id and info types.
    for params in ({"name": "e", "channel": "news", "data": "1", "socket_id": "abc"},
                   {"name": "e", "channel": "news", "data": "1", "info": 5}):
        with pytest.raises(pusher.errors.PusherBadRequest):
            await in_thread(raw_request, lib(base_url), "POST", "/apps/1/events", params)


# ---- wolive's own auth endpoints ----------------------------------------------------------

async def agent_client(base_url: str, wolive_server: Any) -> Client:
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    return agent


async def auth_post(agent: Client, path: str, xsrf: bool = True, **form: str
                    ) -> tuple[int, dict[str, Any]]:
    headers = {"X-XSRFToken": agent.cookies["_xsrf"]} if xsrf and "_xsrf" in agent.cookies \
        else {}
    resp = await agent.fetch(path, "POST", body=urlencode(form).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", **headers})
    assert resp.headers["Content-Type"].startswith("application/json"), resp.body[:200]
    return resp.code, json.loads(resp.body)


@pytest.mark.gen_test
async def test_pusher_auth_signs_only_the_agents_channels(
        ws_base: str, base_url: str, wolive_server: Any) -> None:
    agent = await agent_client(base_url, wolive_server)
    app = wolive_server.hub.default_app
    sock = await PusherSocket.connect(ws_base)
    sid = sock.socket_id

    code, body = await auth_post(agent, "/pusher/auth", socket_id=sid,
                                 channel_name="private-agent-1")
    assert code == 200 and body == {"auth": channel_auth(app.key, app.secret, sid,
                                                         "private-agent-1")}
    assert (await sock.subscribe("private-agent-1", body["auth"]))["event"] == SUCCEEDED

    code, body = await auth_post(agent, "/pusher/auth", socket_id=sid,
                                 channel_name=f"presence-business-{BIZ}")
    assert code == 200
    assert json.loads(body["channel_data"]) == {
        "user_id": "1", "user_info": {"nick_name": "Boss", "avatar": json.loads(
            body["channel_data"])["user_info"]["avatar"]}}
    sock.send("pusher:subscribe", {"channel": f"presence-business-{BIZ}", **body})
    joined = await sock.expect(SUCCEEDED, f"presence-business-{BIZ}")
    assert joined["data"]["presence"]["ids"] == ["1"]
    assert joined["data"]["presence"]["hash"]["1"]["nick_name"] == "Boss"

    code, body = await auth_post(agent, "/pusher/auth", socket_id=sid,
                                 channel_name="private-encrypted-agent-1")
    assert code == 200 and set(body) == {"auth", "shared_secret"}
    expected = pusher.crypto.generate_shared_secret(b"private-encrypted-agent-1",
                                                    derive_master_key(app.secret))
    assert base64.b64decode(body["shared_secret"]) == expected
    assert (await sock.subscribe("private-encrypted-agent-1", body["auth"]))["event"] == \
        SUCCEEDED

    # Someone else's channels, other kinds, other businesses: 403, and no signature leaks.
    for channel in ("private-agent-2", "private-encrypted-agent-2", "presence-business-other",
                    "private-anything", "presence-room", "news"):
        code, body = await auth_post(agent, "/pusher/auth", socket_id=sid,
                                     channel_name=channel)
        assert code == 403 and body["code"] != 0, (channel, body)
        right = channel_auth(app.key, app.secret, sid, channel).split(":")[1]
        assert right not in json.dumps(body)
    # Malformed input: 400.
    for form in ({"socket_id": "abc", "channel_name": "private-agent-1"},
                 {"socket_id": sid, "channel_name": "bad name!"},
                 {"socket_id": sid}):
        code, body = await auth_post(agent, "/pusher/auth", **form)
        assert code == 400, form


@pytest.mark.gen_test
async def test_pusher_auth_needs_the_cookie_and_the_xsrf_token(
        ws_base: str, base_url: str, wolive_server: Any) -> None:
    agent = await agent_client(base_url, wolive_server)
    sid = (await PusherSocket.connect(ws_base)).socket_id
    form = {"socket_id": sid, "channel_name": "private-agent-1"}
    # A cross-site form post carries the cookie but cannot know the token.
    code, body = await auth_post(agent, "/pusher/auth", xsrf=False, **form)
    assert code == 403 and "auth" not in body
    code, body = await auth_post(agent, "/pusher/user-auth", xsrf=False, socket_id=sid)
    assert code == 403 and "auth" not in body
    # A visitor (no agent cookie) with a token of its own: 403.
    stranger = Client(base_url)
    await stranger.get_xsrf()
    for path, extra in (("/pusher/auth", form), ("/pusher/user-auth", {"socket_id": sid})):
        code, body = await auth_post(stranger, path, **extra)
        assert code == 403 and "auth" not in body, (path, body)


@pytest.mark.gen_test
async def test_pusher_user_auth_signs_the_agent_in(ws_base: str, base_url: str,
                                                   wolive_server: Any) -> None:
    agent = await agent_client(base_url, wolive_server)
    sock = await PusherSocket.connect(ws_base)
    code, body = await auth_post(agent, "/pusher/user-auth", socket_id=sock.socket_id)
    assert code == 200 and set(body) == {"auth", "user_data"}
    user = json.loads(body["user_data"])
    assert user["id"] == "agent-1" and user["user_info"]["nick_name"] == "Boss"
    sock.send("pusher:signin", body)
    assert (await sock.expect("pusher:signin_success"))["data"] == {
        "user_data": body["user_data"]}
    assert (await sock.subscribe("#server-to-user-agent-1"))["event"] == SUCCEEDED
    # Signed for this socket only.
    other = await PusherSocket.connect(ws_base)
    other.send("pusher:signin", body)
    assert (await other.expect("pusher:error"))["data"]["code"] == 4009


# ---- the hub alone, with fake connections -------------------------------------------------

class FakeConn:
    """`realtime.pusher.adapter.Connection` in memory. Once `die()` is called it refuses
    every frame, and its first refused frame closes it as a transport does on a failed
    write: `on_dead` (the session's `on_close`) runs right there, inside the send."""

    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id
        self.frames: list[dict[str, Any]] = []
        self.dead = False
        self.on_dead: Any = None
        self.closed: int | None = None

    def die(self, on_dead: Any) -> None:
        self.dead, self.on_dead = True, on_dead

    def send(self, frame: str) -> bool:
        if self.dead:
            on_dead, self.on_dead = self.on_dead, None
            if on_dead is not None:
                on_dead()
            return False
        self.frames.append(json.loads(frame))
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = code

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["event"] == name]


@pytest.mark.parametrize("meets_dead_peer", ["client_event", "member_added"])
def test_a_dead_peer_never_stops_presence_or_client_event_fan_out(
        meets_dead_peer: str) -> None:
    """Subscribers of a presence channel in iteration order A, dead, B, C (the dead peer's
    first failed write closes it from inside the fan-out, as a transport does). Whichever
    fan-out meets the dead peer first (a client event, or `member_added` for a newcomer),
    every live subscriber, before *and after* the dead one, gets it; the dead peer is dropped
    (no session, off the channel, not a member; `member_removed` for it reaches every live
    subscriber once); and the other kind of event then still reaches every live subscriber."""
    from realtime.pusher.hub import App, Hub, Session
    app = App("1", "k", "s")
    hub = Hub([app])
    seen: list[str] = []
    hub.add_listener(lambda a, e: seen.append(e["name"]))
    ch = "presence-x"
    ids = iter(range(1, 100))

    def join(user_id: str) -> Session:
        s = Session(hub=hub, app=app, conn=FakeConn(f"1.{next(ids)}"))
        s.start()
        data = json.dumps({"user_id": user_id})
        s.on_frame(json.dumps({"event": "pusher:subscribe", "data": {
            "channel": ch, "auth": channel_auth("k", "s", s.socket_id, ch, data),
            "channel_data": data}}))
        assert s.conn.events(SUCCEEDED), s.conn.frames
        return s

    a, dead, b, c = (join(u) for u in ("ua", "udead", "ub", "uc"))
    members = hub.adapter._apps[app.id][ch]  # type: ignore[attr-defined]
    assert list(members) == [s.socket_id for s in (a, dead, b, c)]  # the iteration order
    # While all are alive, each hears of every later joiner.
    for s, later in ((a, 3), (dead, 2), (b, 1), (c, 0)):
        assert len(s.conn.events("pusher_internal:member_added")) == later, s.conn.frames
    dead.conn.die(dead.on_close)
    live = [a, b, c]

    def client_event_from_c() -> list[Session]:
        c.on_frame(json.dumps({"event": "client-hi", "channel": ch, "data": {"n": 1}}))
        return [a, b]  # never echoed to the sender

    newcomer: list[Session] = []

    def member_added_for_d() -> list[Session]:
        newcomer.append(join("ud"))
        return [a, b, c]

    def check_client_event(receivers: list[Session]) -> None:
        for s in receivers:
            got = s.conn.events("client-hi")
            assert got == [{"event": "client-hi", "channel": ch, "data": '{"n":1}',
                            "user_id": "uc"}], (s.socket_id, s.conn.frames)
        assert not c.conn.events("client-hi")

    def check_member_added(receivers: list[Session]) -> None:
        for s in receivers:
            added = [f["data"] for f in s.conn.events("pusher_internal:member_added")]
            assert added.count('{"user_id":"ud","user_info":null}') == 1, \
                (s.socket_id, s.conn.frames)

    steps = [(client_event_from_c, check_client_event),
             (member_added_for_d, check_member_added)]
    if meets_dead_peer == "member_added":
        steps.reverse()
    (first, check_first), (second, check_second) = steps
    check_first(first())
    # The dead peer is dropped, and every live subscriber heard it left.
    assert dead.closed and dead.socket_id not in hub.sessions
    assert dead.socket_id not in members
    assert "udead" not in run_inline(hub.adapter.members(app.id, ch))
    everyone = live + newcomer
    for s in everyone:
        assert s.conn.events("pusher_internal:member_removed") == [{
            "event": "pusher_internal:member_removed", "channel": ch,
            "data": '{"user_id":"udead"}'}], (s.socket_id, s.conn.frames)
    check_second(second())
    assert sorted(run_inline(hub.adapter.members(app.id, ch))) == ["ua", "ub", "uc", "ud"]
    assert seen.count("member_removed") == 1 and seen.count("client_event") == 1
    assert seen.count("member_added") == 5
    # A leaver is announced to all who stay, before and after it in iteration order.
    b.on_close()
    for s in (a, c, newcomer[0]):
        assert s.conn.frames[-1] == {"event": "pusher_internal:member_removed", "channel": ch,
                                     "data": '{"user_id":"ub"}'}, s.socket_id
