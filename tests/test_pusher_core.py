"""Pusher core on /app/{key}: handshake, subscribe, ping, errors; the signed HTTP API."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from typing import Any

import pusher
import pytest

from helpers import Client, PusherSocket
from realtime.pusher.signing import SignatureProblem, channel_auth, verify_api_request


def app_of(wolive_server: Any) -> Any:
    return wolive_server.hub.default_app


def official_client(wolive_server: Any, base_url: str) -> pusher.Pusher:
    app = app_of(wolive_server)
    port = int(base_url.rsplit(":", 1)[1])
    return pusher.Pusher(app_id=app.id, key=app.key, secret=app.secret, host="127.0.0.1",
                         port=port, ssl=False)


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    """The official Python library is synchronous: run it off the IOLoop."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


async def _established(ws_base: str, query: str) -> dict[str, Any]:
    """Open `/app/wolive?{query}` and return its first frame as sent: `data` left as the
    JSON string it came as (the socket is closed by the test's end)."""
    from tornado.websocket import websocket_connect
    conn = await websocket_connect(f"{ws_base}/app/wolive?{query}")
    PusherSocket(conn)  # registered, so the fixture closes it
    raw = await asyncio.wait_for(conn.read_message(), 5)
    assert isinstance(raw, str), raw
    return json.loads(raw)


@pytest.mark.gen_test
async def test_handshake(ws_base: str) -> None:
    """The whole `pusher:connection_established` frame (Pusher protocol 7): only `event` and
    `data`; `data` a JSON *string* of exactly {socket_id, activity_timeout}; socket_id
    `\\d+\\.\\d+`, different on each connection; activity_timeout an integer, the
    server's value. `?protocol=7` (with pusher-js's other query arguments) is accepted; an
    unsupported version gets `pusher:error` 4007 first and only, then a close with 4007."""
    from realtime.pusher.protocol import ACTIVITY_TIMEOUT_S
    ids = []
    for query in ("protocol=7&client=js&version=8.6.0&flash=false", "protocol=7"):
        frame = await _established(ws_base, query)
        assert frame["event"] == "pusher:connection_established", frame
        assert set(frame) == {"event", "data"}, frame
        assert isinstance(frame["data"], str), frame  # server→client data is a JSON string
        data = json.loads(frame["data"])
        assert isinstance(data, dict) and set(data) == {"socket_id", "activity_timeout"}, data
        assert isinstance(data["socket_id"], str)
        assert re.fullmatch(r"\d+\.\d+", data["socket_id"]), data
        timeout = data["activity_timeout"]
        assert type(timeout) is int and timeout == ACTIVITY_TIMEOUT_S, data
        ids.append(data["socket_id"])
    assert ids[0] != ids[1], ids
    from tornado.websocket import websocket_connect
    for version in ("3", "8", "x", ""):
        conn = await websocket_connect(f"{ws_base}/app/wolive?protocol={version}")
        PusherSocket(conn)
        frame = json.loads(await asyncio.wait_for(conn.read_message(), 5))
        assert frame["event"] == "pusher:error", (version, frame)
        assert isinstance(frame["data"], str), frame
        error = json.loads(frame["data"])
        assert error["code"] == 4007 and error["message"], (version, error)
        assert await asyncio.wait_for(conn.read_message(), 10) is None, version
        assert conn.close_code == 4007, (version, conn.close_code)


@pytest.mark.gen_test
async def test_connection_established_frame_is_exact(ws_base: str) -> None:
    from tornado.websocket import websocket_connect
    conn = await websocket_connect(f"{ws_base}/app/wolive?protocol=7")
    frame = json.loads(await conn.read_message())
    assert frame["event"] == "pusher:connection_established"
    assert isinstance(frame["data"], str)  # server→client data is a JSON string
    data = json.loads(frame["data"])
    assert data["activity_timeout"] == 120 and re.fullmatch(r"\d+\.\d+", data["socket_id"])
    conn.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("path, code", [("/app/nokey?protocol=7", 4001),
                                        ("/app/wolive?protocol=3", 4007),
                                        ("/app/wolive?protocol=x", 4007)])
async def test_fatal_errors_send_then_close(ws_base: str, path: str, code: int) -> None:
    from tornado.websocket import websocket_connect
    conn = await websocket_connect(ws_base + path)
    frame = json.loads(await conn.read_message())
    assert frame["event"] == "pusher:error" and json.loads(frame["data"])["code"] == code
    assert await conn.read_message() is None
    assert conn.close_code == code
    conn.close()


@pytest.mark.gen_test
async def test_ping_pong_and_bad_frames_do_not_close(ws_base: str) -> None:
    sock = await PusherSocket.connect(ws_base)
    sock.send("pusher:ping", {})
    assert (await sock.recv())["event"] == "pusher:pong"
    for raw in ("not json", "[1,2]", '{"event": 5}', '{"event":"pusher:subscribe","data":7}',
                '{"event":"pusher:subscribe","data":{"channel":"bad name!"}}',
                '{"event":"pusher:nonsense"}'):
        sock.conn.write_message(raw)
        frame = await sock.recv()
        assert frame["event"] == "pusher:error", (raw, frame)
        assert frame["data"]["message"]
    sock.send("pusher:ping", {})
    assert (await sock.recv())["event"] == "pusher:pong"


@pytest.mark.gen_test
async def test_publish_through_official_library(ws_base: str, base_url: str,
                                                wolive_server: Any) -> None:
    a = await PusherSocket.connect(ws_base)
    b = await PusherSocket.connect(ws_base)
    assert (await a.subscribe("my-channel"))["event"] == "pusher_internal:subscription_succeeded"
    await b.subscribe("my-channel")
    client = official_client(wolive_server, base_url)
    result = await in_thread(client.trigger, "my-channel", "sendmsg", {"message": "hello"})
    assert result == {}
    for sock in (a, b):
        frame = await sock.expect("sendmsg", "my-channel")
        assert frame["data"] == {"message": "hello"}
    # socket_id exclusion.
    await in_thread(client.trigger, ["my-channel", "other"], "sendmsg", {"n": 2},
                    socket_id=a.socket_id)
    assert (await b.expect("sendmsg"))["data"] == {"n": 2}
    await a.nothing()
    # Unsubscribed: nothing more.
    a.send("pusher:unsubscribe", {"channel": "my-channel"})
    await asyncio.sleep(0.05)
    await in_thread(client.trigger, "my-channel", "sendmsg", {"n": 3})
    await b.expect("sendmsg")
    await a.nothing()


@pytest.mark.gen_test
async def test_unsigned_or_stale_api_calls_get_401_and_publish_nothing(
        ws_base: str, base_url: str, wolive_server: Any) -> None:
    sock = await PusherSocket.connect(ws_base)
    await sock.subscribe("news")
    app = app_of(wolive_server)
    body = json.dumps({"name": "x", "channel": "news", "data": "{}"}).encode()
    c = Client(base_url)
    resp = await c.fetch(f"/apps/{app.id}/events", "POST", body=body,
                         headers={"Content-Type": "application/json"})
    assert resp.code == 401 and "error" in json.loads(resp.body)
    wrong_secret = pusher.Pusher(app_id=app.id, key=app.key, secret="nope", host="127.0.0.1",
                                 port=int(base_url.rsplit(":", 1)[1]), ssl=False)
    with pytest.raises(pusher.errors.PusherBadAuth):
        await in_thread(wrong_secret.trigger, "news", "x", {})
    # A correct signature but a timestamp 20 minutes old.
    stale = int(time.time()) - 1200
    params = {"auth_key": app.key, "auth_timestamp": str(stale), "auth_version": "1.0",
              "body_md5": hashlib.md5(body).hexdigest()}
    from realtime.pusher.signing import hmac_sha256_hex, string_to_sign
    params["auth_signature"] = hmac_sha256_hex(
        app.secret, string_to_sign("POST", f"/apps/{app.id}/events", params))
    from urllib.parse import urlencode
    resp = await c.fetch(f"/apps/{app.id}/events?{urlencode(params)}", "POST", body=body,
                         headers={"Content-Type": "application/json"})
    assert resp.code == 401 and b"600" in resp.body
    # A tampered body under a good signature.
    params["auth_timestamp"] = str(int(time.time()))
    params["auth_signature"] = hmac_sha256_hex(
        app.secret, string_to_sign("POST", f"/apps/{app.id}/events", params))
    resp = await c.fetch(f"/apps/{app.id}/events?{urlencode(params)}", "POST",
                         body=body.replace(b"news", b"newz"),
                         headers={"Content-Type": "application/json"})
    assert resp.code == 401
    await sock.nothing()


def raw_post(client: pusher.Pusher, params: dict[str, Any]) -> Any:
    """A signed POST the library itself would refuse to build (it checks client-side)."""
    from pusher.http import Request
    inner = client._pusher_client
    return inner.http.send_request(Request(inner, "POST", f"/apps/{inner.app_id}/events",
                                           params))


@pytest.mark.gen_test
@pytest.mark.parametrize("params, error", [
    ({"name": "x"}, pusher.errors.PusherBadRequest),
    ({"name": "x", "channel": "bad name!", "data": "1"}, pusher.errors.PusherBadRequest),
    ({"name": "x", "channels": [f"c{i}" for i in range(101)], "data": "1"},
     pusher.errors.PusherBadRequest),
    ({"name": "x", "channel": "c", "data": {"not": "a string"}}, pusher.errors.PusherBadRequest),
    ({"name": "x", "channel": "c", "data": "x" * 10241}, pusher.errors.PusherError),
])
async def test_api_bad_requests_answer_json(base_url: str, wolive_server: Any,
                                            params: dict[str, Any], error: type) -> None:
    client = official_client(wolive_server, base_url)
    with pytest.raises(error) as info:
        await in_thread(raw_post, client, params)
    assert "error" in str(info.value)


def test_official_documentation_signature_vector() -> None:
    """Pusher REST API docs' worked example (PUSHER-COMPAT.md)."""
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    assert hashlib.md5(body).hexdigest() == "ec365a775a4cd0599faeb73354201b6f"
    params = {"auth_key": "278d425bdf160c739803", "auth_timestamp": "1353088179",
              "auth_version": "1.0", "body_md5": "ec365a775a4cd0599faeb73354201b6f",
              "auth_signature":
              "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"}
    verify_api_request("POST", "/apps/3/events", params, body, "278d425bdf160c739803",
                       "7ad3773142a6692b25b8", now=1353088179)
    with pytest.raises(SignatureProblem):
        verify_api_request("POST", "/apps/3/events", {**params, "auth_signature": "0" * 64},
                           body, "278d425bdf160c739803", "7ad3773142a6692b25b8",
                           now=1353088179)


@pytest.mark.gen_test
async def test_private_channel_needs_a_valid_signature(ws_base: str, wolive_server: Any) -> None:
    app = app_of(wolive_server)
    sock = await PusherSocket.connect(ws_base)
    bad = await sock.subscribe("private-room", auth=f"{app.key}:{'0' * 64}")
    assert bad["event"] == "pusher:subscription_error" and bad["data"]["status"] == 401
    assert app.secret not in json.dumps(bad)  # never leak the expected signature
    good = await sock.subscribe("private-room",
                                auth=channel_auth(app.key, app.secret, sock.socket_id,
                                                  "private-room"))
    assert good["event"] == "pusher_internal:subscription_succeeded"


@pytest.mark.gen_test
async def test_pusher_min_js_accepts_the_documents_snippet(base_url: str) -> None:
    resp = await Client(base_url).fetch("/assets/libs/push/pusher.min.js")
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("application/javascript")
    assert b"Options object must provide a cluster" in resp.body  # pusher-js 8 itself
    assert b"__woliveCompat" in resp.body  # and the shim for the cluster-less snippet
