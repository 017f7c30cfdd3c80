"""Property-based fuzzing (Hypothesis) of every URL in docs/api.md and every client frame of
the Pusher WebSocket, with the hostile input families of issue 10: deep nesting, lone
surrogates (as JSON escapes and as broken UTF-8), NUL, huge and negative numbers, Unicode
digits, padded numbers, wrong types (lists/objects where text is expected), wrong and missing
content types, duplicated parameters, oversize values.

Asserted for every input:
- HTTP: no 5xx (a dropped connection is Tornado's client 599, so it counts), no ERROR log
  (checked per input, so Hypothesis shrinks to the culprit; the autouse
  `fail_on_error_logs` fixture checks again), a JSON `{code, msg}` from the JSON APIs, and on
  every refusal (4xx) the main tables hold exactly what they held before.
- WebSocket: each frame is answered (`pusher:error`, a subscription error...) or ignored
  with the socket still open — a subscription to a fresh public channel sent after it
  succeeds — or the socket is closed with a close code (1009 for a frame over 128 KB);
  never dropped. No error log, nothing written.

Reproducible and bounded: `derandomize=True`, no example database, `deadline=None`; about
1,800 requests (12 per URL and method, callers drawn: a stranger, the visitor, the logged-in
boss, and for the Pusher API and webhooks a correctly signed caller) and 400 frames on SQLite,
a third of that on MariaDB: under a minute for the file on a loaded 2-core machine.
$WOLIVE_FUZZ_SCALE multiplies the counts for a longer hunt. The file prints how many inputs
it tried (a line in the terminal summary).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import pytest
from helpers import BIZ, PASSWORD, Client, ErrorRecords, PusherSocket, open_visitor_window
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_docs import documented
from test_api_lean_path import signed
from test_pusher_protocol import APPS, cfg, lib  # noqa: F401 (cfg: apps with known secrets)

from realtime.pusher.signing import hmac_sha256_hex

#: Examples per (method, URL), and frames: SQLite gets the full run, MariaDB a smaller one.
#: $WOLIVE_FUZZ_SCALE multiplies both (a longer hunt: WOLIVE_FUZZ_SCALE=10).
SCALE = float(os.environ.get("WOLIVE_FUZZ_SCALE", "1"))
EXAMPLES = {k: max(1, int(v * SCALE)) for k, v in {"sqlite": 12, "mariadb": 4}.items()}
WS_EXAMPLES = {k: max(1, int(v * SCALE)) for k, v in {"sqlite": 400, "mariadb": 120}.items()}
#: The tables a refusal must leave as they were.
TABLES = ["wolive_service", "wolive_visiter", "wolive_business", "wolive_chats",
          "wolive_message", "wolive_question", "wolive_queue", "wolive_sentence",
          "wolive_tablist", "wolive_weixin", "wolive_service_status"]
PARAMS = ["visiter_id", "business_id", "channel", "service_id", "content", "qid", "tid",
          "before", "after", "limit", "page", "start", "end", "puttime", "time", "state",
          "user_name", "nick_name", "password", "password2", "special", "cid", "typing",
          "open_id", "level", "name", "tel", "email", "note", "status", "id", "ids", "title",
          "shared", "contents", "q", "visiter", "call", "socket_id", "channel_name",
          "action", "oldpass", "newpass", "distribution_rule", "avatar", "record",
          "visiter_name", "from_url", "username", "service", "auth_key", "auth_timestamp",
          "auth_signature", "body_md5", "filter_by_prefix", "info"]

#: Counted inputs, printed at the end of the session.
TRIED = {"http": 0, "frames": 0, "accepted": 0, "refused": 0}


class _Summary:
    """A pytest plugin registered by the first test here: one line in the terminal summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep(
            "-", f"fuzz: tried {TRIED['http']} HTTP requests ({TRIED['accepted']} accepted, "
                 f"{TRIED['refused']} refused) and {TRIED['frames']} WebSocket frames")


@pytest.fixture(autouse=True)
def report_count(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("wolive-fuzz-summary"):
        manager.register(_Summary(), "wolive-fuzz-summary")


# ---- input families ----------------------------------------------------------------------

NUMBERS = ["0", "-1", "1", " 7 ", "7\n", "+7", "07", "٣", "７", "³", "9" * 20, "9" * 30,
           "9" * 400, "-" + "9" * 25, str(2**63), str(-2**63 - 1), "1.5", "1e308", "NaN"]
ODD_TEXT = ["", " ", "a\x00b", "\x00", "<script>alert(1)</script>", "../../etc/passwd",
            "💥\u202e", "true", "null", "[]", "{}", "[" * 40 + "]" * 40, "cu", "kefu1"]
#: Text values (form fields, query values).
TEXT = st.one_of(
    st.sampled_from(NUMBERS + ODD_TEXT),
    st.text(max_size=12),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "9", "é"]),
              st.sampled_from([256, 1001, 70_000])),
)
#: A form value that is not UTF-8: a lone surrogate (CESU-8 bytes) or a stray byte.
BROKEN_UTF8 = ["%ED%A0%80", "%FF", "a%00b"]
#: JSON texts of values (inside a JSON object body).
JSON_RAW = st.one_of(
    TEXT.map(json.dumps),
    st.sampled_from(['"\\ud800"', '"a\\udfffb"', '"\\u0000"', "1" + "0" * 400, "-1e999",
                     "1e400", "-" + "9" * 30, "true", "false", "null", "3.5", "[]", "{}",
                     '["a", 1]', '{"a": {"b": [1]}}', '[{"visiter_id": "x"}]']),
    st.sampled_from([33, 5000, 100_000]).map(lambda n: "[" * n + "]" * n),
    st.sampled_from([33, 5000]).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
#: Whole JSON bodies that are not an object.
NOT_OBJECT = ["[1,2]", '"text"', "42", "null", "{bad", "[" * 100_000 + "]" * 100_000,
              '{"a": "\\ud800"}', "\ufeff{}"]


@dataclass
class Ctx:
    """What the callers know: the boss's cookies, a visitor's ids and cookies, a stranger."""
    base_url: str
    db_url: str
    boss: Client
    visitor: Client
    stranger: Client
    visitor_ids: dict[str, str]
    fingerprint: Fingerprint
    errors: list[logging.LogRecord] = field(default_factory=list)


@pytest.fixture
def ctx(io_loop: Any, base_url: str, ws_base: str, db_url: str) -> Iterator[Ctx]:
    async def setup() -> Ctx:
        boss = Client(base_url)
        assert (await boss.install(BIZ, "boss", PASSWORD)).code == 302
        # The boss online (its console socket holds kefu{id}), so the visitor gets it and
        # the conversation URLs go past "never queued".
        agent_sock = await PusherSocket.connect(ws_base, cookie=boss.cookie_header())
        sid = (await boss.json("/admin/manager/list"))[1]["data"][0]["service_id"]
        answer = await agent_sock.subscribe(f"kefu{sid}")
        assert answer["event"] == "pusher_internal:subscription_succeeded", answer
        visitor, boot = await open_visitor_window(base_url, BIZ, "fuzz-visitor")
        ids = {"visiter_id": boot["visiter_id"], "business_id": BIZ,
               "channel": boot["channel"]}

        async def assigned() -> bool:
            code, body = await visitor.json("/admin/event/notice", "POST", form=ids)
            return body["code"] == 0
        for _ in range(100):  # presence is written when the socket's subscription lands
            if await assigned():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the visitor was never assigned to the online boss")
        await visitor.fetch("/admin/event/chats", "POST", form={**ids, "content": "hello"})
        stranger = Client(base_url)
        await stranger.get_xsrf()
        return Ctx(base_url, db_url, boss, visitor, stranger, ids, Fingerprint(db_url))
    c = io_loop.run_sync(setup)
    handler = ErrorRecords(c.errors)
    loggers = [logging.getLogger(n) for n in ("wolive", "tornado")]
    for lg in loggers:
        lg.addHandler(handler)
    yield c
    for lg in loggers:
        lg.removeHandler(handler)
    c.fingerprint.close()


class Fingerprint:
    """A hash of every row of the main tables, over one kept connection (autocommit, so each
    call sees what the server committed): SQLite reads the rows, MariaDB `CHECKSUM TABLE`."""

    def __init__(self, db_url: str) -> None:
        self.mysql = not db_url.startswith("sqlite:///")
        if self.mysql:
            import pymysql
            from urllib.parse import urlsplit
            u = urlsplit(db_url)
            self.conn: Any = pymysql.connect(
                host=u.hostname, port=u.port or 3306, user=u.username or "root",
                password=u.password or "", database=u.path.lstrip("/"), charset="utf8mb4",
                autocommit=True)
        else:
            import sqlite3
            self.conn = sqlite3.connect(db_url[len("sqlite:///"):], isolation_level=None)

    def __call__(self) -> dict[str, str]:
        """{table: checksum or row hash}."""
        if self.mysql:
            with self.conn.cursor() as cur:
                cur.execute("CHECKSUM TABLE " + ", ".join(TABLES) + " EXTENDED")
                return {name.rsplit(".", 1)[-1]: str(value) for name, value in cur.fetchall()}
        return {table: hashlib.sha256(repr(sorted(map(
                    repr, self.conn.execute(f"SELECT * FROM {table}").fetchall()))).encode()
                ).hexdigest() for table in TABLES}

    @staticmethod
    def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
        return [t for t in TABLES if before.get(t) != after.get(t)]

    def close(self) -> None:
        self.conn.close()


def kind(request: pytest.FixtureRequest) -> str:
    return "mariadb" if "mariadb" in request.node.name else "sqlite"


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


# ---- HTTP --------------------------------------------------------------------------------

def routes() -> list[tuple[str, str]]:
    out = set()
    for methods, sample in documented():
        for method in methods & {"GET", "POST"}:
            out.add((method, sample))
    return sorted(out)


class Call:
    """One request (not a dataclass: Hypothesis would print it whole, megabytes)."""

    def __init__(self, who: str, method: str, path: str, body: bytes | None,
                 headers: dict[str, str]) -> None:
        self.who, self.method, self.path, self.body, self.headers = \
            who, method, path, body, headers

    def __repr__(self) -> str:
        body = self.body[:160] if self.body else self.body
        return (f"{self.who} {self.method} {self.path[:200]} ({len(self.path)} chars) "
                f"body={body!r} ({len(self.body or b'')} bytes) {self.headers}")


#: File contents: a tiny PNG, a WAV header, text, nothing, bytes that claim to be an image.
FILES = [b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x4e\x20" * 2 + b"\x08\x02",
         b"RIFF\x24\x00\x00\x00WAVEfmt ", b"hello", b"", b"GIF89a" + b"\xff" * 20]
FILENAMES = ["a.png", "报价 \"final\" it's.png", "../../x.php", "a\x00b.png", "x" * 300,
             "", ".png", "%ED%A0%80.png", "\\windows\\path.pdf", "a\r\nContent-Type: x.png"]


@st.composite
def multipart(draw: Any, base: dict[str, str], names: list[str]) -> tuple[bytes, str]:
    """A multipart/form-data body: the ids, fuzzed fields and files in the upload fields,
    with odd names (quotes, NUL, CR LF, paths, a percent-encoded surrogate)."""
    boundary = "fuzzb0undary"
    parts = []
    for name, value in [*base.items(), *((n, draw(TEXT)) for n in names)]:
        parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode("utf-8", "surrogatepass"))
    for _ in range(draw(st.integers(0, 2))):
        field_name = draw(st.sampled_from(["upload", "folder", "img_head", "voice", "file"]))
        filename = draw(st.sampled_from(FILENAMES))
        star = draw(st.sampled_from(["", "; filename*=UTF-8''%E6%8A%A5%22.png",
                                     "; filename*=UTF-8''%ED%A0%80.png", "; filename*=bad"]))
        ctype = draw(st.sampled_from(["image/png", "text/html", "", "application/json"]))
        head = (f'Content-Disposition: form-data; name="{field_name}"; '
                f'filename="{filename}"{star}\r\n' +
                (f"Content-Type: {ctype}\r\n" if ctype else "") + "\r\n")
        parts.append(head.encode("utf-8", "surrogatepass") + draw(st.sampled_from(FILES)))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + boundary.encode() + (b"--\r\n" if draw(st.booleans()) else b"")
    return body, f"multipart/form-data; boundary={boundary}"


@st.composite
def calls(draw: Any, method: str, path: str, ctx: Ctx) -> Call:
    pusher_api = path.startswith(("/apps/", "/users/")) or path == "/admin/event"
    who = draw(st.sampled_from(["stranger", "visitor", "agent"] +
                               (["signed"] if pusher_api and method == "POST" else [])))
    names = draw(st.lists(st.sampled_from(PARAMS), max_size=5))
    base = dict(ctx.visitor_ids) if who in ("visitor", "agent") and draw(st.booleans()) else {}
    if who == "agent":
        base.pop("channel", None)
    shape = draw(st.sampled_from(["query"] * 3 + ["broken_utf8"])) if method == "GET" else \
        draw(st.sampled_from(["form", "form", "json", "json", "not_object", "wrong_type",
                              "duplicate", "query+form", "broken_utf8", "multipart",
                              "multipart"]))
    headers: dict[str, str] = {}
    body: bytes | None = None
    query = ""
    if shape in ("query", "form", "query+form", "duplicate", "wrong_type"):
        values = {n: draw(TEXT) for n in names}
        if method == "GET":  # keep most URLs under the head limit; some go over it
            values = {n: v[:2000] if draw(st.integers(0, 9)) else v for n, v in values.items()}
        form = {**base, **values}
        pairs = list(form.items())
        if shape == "duplicate":
            pairs += [(n, draw(TEXT)) for n in (names or ["visiter_id"])]
        encoded = urlencode(pairs)
        if shape in ("query",):
            query = encoded
        elif shape == "query+form":
            query, body = urlencode({n: draw(TEXT) for n in names}), encoded.encode()
        else:
            body = encoded.encode()
        if body is not None:
            headers["Content-Type"] = draw(st.sampled_from(
                ["application/x-www-form-urlencoded"] * 3 +
                (["application/json", "text/plain", "multipart/form-data",
                  "multipart/form-data; boundary=zz", ""] if shape == "wrong_type" else [])))
    elif shape == "broken_utf8":
        pairs = [f"{quote(n)}={draw(st.sampled_from(BROKEN_UTF8))}" for n in names or ["content"]]
        encoded = "&".join([urlencode(base)] + pairs if base else pairs)
        if method == "GET":
            query = encoded
        else:
            body = encoded.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif shape == "multipart":
        body, headers["Content-Type"] = draw(multipart(base, names))
    elif shape == "json":
        items = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in base.items()]
        items += [f"{json.dumps(n)}: {draw(JSON_RAW)}" for n in names]
        body = ("{" + ", ".join(items) + "}").encode("utf-8", "surrogatepass")
        headers["Content-Type"] = draw(st.sampled_from(
            ["application/json", "application/json; charset=UTF-8", "text/plain", ""]))
    else:  # not_object
        body = draw(st.sampled_from(NOT_OBJECT)).encode("utf-8", "surrogatepass")
        headers["Content-Type"] = "application/json"
    if not headers.get("Content-Type", "x"):
        headers.pop("Content-Type")
    target = path
    if who == "signed" and path == "/admin/event":  # a webhook, signed with app 1's secret
        if draw(st.booleans()):
            body = ('{"time_ms": ' + str(int(time.time() * 1000)) + ', "events": [' + ", ".join(
                '{"name": ' + draw(JSON_RAW) + ', "channel": ' + draw(JSON_RAW) +
                ', "user_id": ' + draw(JSON_RAW) + "}" for _ in range(draw(st.integers(0, 2))))
                + "]}").encode("utf-8", "surrogatepass")
            headers["Content-Type"] = "application/json"
        headers["X-Pusher-Key"] = APPS[0]["key"]
        headers["X-Pusher-Signature"] = hmac_sha256_hex(APPS[0]["secret"], body or b"")
        if query:
            target += "?" + query
    elif who == "signed":
        target = signed("1", path, body or b"")
        if query:
            target += "&" + query
    elif query:
        target += "?" + query
    return Call(who, method, target, body, headers)


async def send(ctx: Ctx, call: Call) -> tuple[int, bytes, str]:
    client = {"agent": ctx.boss, "visitor": ctx.visitor}.get(call.who, ctx.stranger)
    headers = dict(call.headers)
    if call.who == "agent" and call.method == "POST":
        headers["X-XSRFToken"] = ctx.boss.cookies["_xsrf"]
    resp = await client.fetch(call.path, call.method, body=call.body, headers=headers)
    # A fetch must not change who the caller is (a logout is not fuzzed, see below).
    return resp.code, resp.body or b"", resp.headers.get("Content-Type", "")


def check_http(ctx: Ctx, call: Call, code: int, body: bytes, ctype: str) -> None:
    assert code < 500, f"{code} for {call!r}: {body[:300]!r}"
    assert not ctx.errors, f"error logged for {call!r}: " + "\n".join(
        logging.Formatter().format(r) for r in ctx.errors)
    if ctype.startswith("application/json") and call.path.startswith("/admin/") \
            and code >= 400:
        parsed = json.loads(body)
        assert isinstance(parsed, dict) and parsed.get("code") and parsed.get("msg"), \
            (call, parsed)


def settle(io_loop: Any, ctx: Ctx) -> None:
    """Run the server until the tables stop changing: an accepted request's follow-ups
    (pushes, presence, assignment) finish, so they are not taken for a later refusal's."""
    last = ctx.fingerprint()
    for _ in range(100):
        io_loop.run_sync(lambda: asyncio.sleep(0.01))
        now = ctx.fingerprint()
        if now == last:
            return
        last = now
    raise AssertionError("the tables kept changing for over a second after a request")


def test_fuzz_every_url(io_loop: Any, ctx: Ctx, request: pytest.FixtureRequest) -> None:
    n = EXAMPLES[kind(request)]
    for method, path in routes():
        if path == "/admin/login/logout":
            continue  # as the agent it would end the session the other cases use

        @fuzz_settings(n)
        @given(call=calls(method, path, ctx))
        def one(call: Call) -> None:
            before = ctx.fingerprint()
            code, body, ctype = io_loop.run_sync(lambda: send(ctx, call), timeout=60)
            TRIED["http"] += 1
            TRIED["accepted" if code < 400 else "refused"] += 1
            check_http(ctx, call, code, body, ctype)
            if code >= 400:
                wrote = Fingerprint.changed(before, ctx.fingerprint())
                assert not wrote, f"{code} refusal wrote {wrote} for {call!r}"
            else:  # let what the request started in the background land before the next
                settle(io_loop, ctx)

        one()


# ---- WebSocket ---------------------------------------------------------------------------

CHANNELS = ["news", "kefu1", "ud1", f"all{BIZ}", "cu0123456789abcdef", "se1", "private-room",
            "private-encrypted-room", "presence-room", "cache-room", "private-cache-room",
            "presence-cache-room", "private-encrypted-cache-room", "#server-to-user-a",
            f"presence-business-{BIZ}", "private-agent-1", "private-call-" + "0" * 32, "",
            "x" * 300, "bad channel", "kefu٣"]
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), TEXT,
              st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "user_id", "id", "channel"]),
                                            inner, max_size=3)),
    max_leaves=6)


@st.composite
def frames(draw: Any, socket_id: str) -> str:
    """One client frame as text (possibly not JSON at all)."""
    which = draw(st.sampled_from(["subscribe", "subscribe", "unsubscribe", "ping", "signin",
                                  "client", "client", "garbage", "raw"]))
    channel = draw(st.one_of(st.sampled_from(CHANNELS), JSON_VALUE))
    client = lib("http://127.0.0.1:1")
    if which == "subscribe":
        data: Any = {"channel": channel}
        if draw(st.booleans()) and isinstance(channel, str) and channel.startswith(
                ("private-", "presence-")):
            channel_data = draw(st.one_of(
                st.just('{"user_id": "u", "user_info": {"n": "\\ud800"}}'),
                JSON_VALUE.map(json.dumps),
                st.builds(lambda u: json.dumps({"user_id": u}), JSON_VALUE)))
            try:
                data = {"channel": channel, "channel_data": channel_data,
                        "auth": client.authenticate(channel, socket_id,
                                                    json.loads(channel_data)
                                                    if channel.startswith("presence-")
                                                    else None)["auth"]}
                if channel.startswith("presence-"):
                    data["channel_data"] = channel_data
            except Exception:  # the library refuses to sign it: send it unsigned
                data["auth"] = "wolive:" + "0" * 64
        elif draw(st.booleans()):
            data["auth"] = draw(JSON_VALUE)
        return json.dumps({"event": "pusher:subscribe", "data": data})
    if which == "unsubscribe":
        return json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    if which == "ping":
        return json.dumps({"event": "pusher:ping", "data": draw(JSON_VALUE)})
    if which == "signin":
        user_data = draw(st.one_of(JSON_VALUE.map(json.dumps),
                                   st.just('{"id": "\\ud800"}'), st.just('{"id": "a"}')))
        auth: Any = draw(JSON_VALUE)
        if draw(st.booleans()):
            try:
                auth = client.authenticate_user(socket_id, json.loads(user_data))["auth"]
            except Exception:
                pass
        return json.dumps({"event": "pusher:signin",
                           "data": {"user_data": user_data, "auth": auth}})
    if which == "client":
        raw = draw(JSON_RAW)
        return ('{"event": ' + json.dumps(draw(st.sampled_from(["client-x", "client-", 5])))
                + ', "channel": ' + json.dumps(draw(st.sampled_from(
                    ["private-room", "presence-room", "news", "nope"])))
                + ', "data": ' + raw + "}")
    if which == "garbage":
        return draw(st.sampled_from([
            "", "not json", "[]", "null", "42", '"x"', "{}", '{"event": 5}', '{"event": null}',
            '{"event": "pusher:nope"}', '{"event": "pusher:subscribe"}',
            '{"event": "pusher:subscribe", "data": "news"}',
            '{"event": "pusher:subscribe", "data": "{\\"channel\\": \\"news\\"}"}',
            "[" * 5000 + "]" * 5000, '{"event": "x", "data": "\\ud800"}',
            '{"event": "pusher:ping", "data": ' + "[" * 40 + "]" * 40 + "}",
            "x" * 40_000]))
    return json.dumps({"event": draw(TEXT), "data": draw(JSON_VALUE),
                       "channel": channel})


async def open_socket(ctx: Ctx, ws_base: str) -> PusherSocket:
    return await PusherSocket.connect(ws_base)


async def send_frame(sock: PusherSocket, frame: str, n: int) -> str:
    """Send `frame`, then subscribe to the public channel `sync-{n}`: 'open' when that
    succeeds (the socket lives and answered everything before it), 'closed' when a close
    frame with a code came; a socket dropped without one fails."""
    from tornado.websocket import WebSocketClosedError
    sync = f"sync-{n}"
    try:  # a frame over the transport's limit is cut off by the server's close (1009)
        await sock.conn.write_message(frame)
        sock.send("pusher:subscribe", {"channel": sync})
    except WebSocketClosedError:
        pass
    while True:
        got = await sock.recv(timeout=20)
        if got["event"] == "pusher_internal:subscription_succeeded" and \
                got.get("channel") == sync:
            sock.send("pusher:unsubscribe", {"channel": sync})
            return "open"
        if got["event"] == "__closed__":
            assert got["code"] is not None, f"socket dropped without a close frame: {frame[:200]!r}"
            return "closed"


def test_fuzz_every_frame(io_loop: Any, ctx: Ctx, ws_base: str,
                          request: pytest.FixtureRequest) -> None:
    n = WS_EXAMPLES[kind(request)]
    state: dict[str, PusherSocket] = {}

    async def ready() -> PusherSocket:
        sock = state.get("sock")
        if sock is None or sock.conn.close_code is not None:
            sock = state["sock"] = await open_socket(ctx, ws_base)
            # Hold a private and a presence channel, so client events have somewhere to go.
            client = lib(ctx.base_url)
            await sock.subscribe("private-room",
                                 client.authenticate("private-room", sock.socket_id)["auth"])
            signed_p = client.authenticate("presence-room", sock.socket_id, {"user_id": "me"})
            sock.send("pusher:subscribe", {"channel": "presence-room", **signed_p})
            await sock.expect("pusher_internal:subscription_succeeded", "presence-room")
        return sock

    @fuzz_settings(n)
    @given(data=st.data())
    def one(data: Any) -> None:
        sock = io_loop.run_sync(ready, timeout=60)
        frame = data.draw(frames(sock.socket_id), label="frame")
        before = ctx.fingerprint()
        TRIED["frames"] += 1
        outcome = io_loop.run_sync(lambda: send_frame(sock, frame, TRIED["frames"]), timeout=60)
        assert not ctx.errors, f"error logged for frame {frame[:200]!r}: " + "\n".join(
            logging.Formatter().format(r) for r in ctx.errors)
        wrote = Fingerprint.changed(before, ctx.fingerprint())
        assert not wrote, f"frame wrote {wrote}: {frame[:200]!r}"
        if outcome == "closed":
            state.pop("sock", None)

    one()
    sock = state.get("sock")
    if sock is not None:
        sock.close()

