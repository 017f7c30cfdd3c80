"""Bad input never gets a traceback: every documented URL, each parameter its handler reads
given one hostile value while the others are plausible (so that parameter's own handling is
reached), answers a 4xx (or 2xx) with a readable body — never a 5xx, never an error log
(checked per parameter, and by the autouse fail_on_error_logs fixture)."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from helpers import PASSWORD, BIZ

from helpers import (Client, ErrorRecords, PusherSocket, db_rows, open_visitor_window,
                     wait_for)
from test_api_docs import documented

SUBSCRIBED = "pusher_internal:subscription_succeeded"


class Raw(str):
    """A form value written into the body or query as is: its own percent-encoding."""


class Json:
    """A value of a JSON type (list, object, number, bool, null): sent in a JSON body."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Array(list):  # type: ignore[type-arg]
    """PHP's array syntax: `name[]=a&name[]=b` in place of `name=...`."""


class Repeated(list):  # type: ignore[type-arg]
    """The parameter given twice: `name=a&name=b`."""


#: One hostile value at a time, in one parameter: (what it is, the value).
HOSTILE: list[tuple[str, Any]] = [
    ("too long", "x" * 70_000),
    ("empty", ""),
    ("not a number", "abc"),
    ("decimal", "1.5"),
    ("non-ASCII digit", "٣"),
    ("negative", "-1"),
    ("huge", "9" * 30),
    ("past BIGINT", str(2**63)),
    ("NUL", "a\x00b"),
    ("control characters", "\x01\x1b[31m\r\n\x7f\u202e💥"),
    ("JSON as text", '{"a": [1, 2]}'),
    ("markup and a path", "<script>alert(1)</script>../../etc/passwd"),
    ("lone surrogate as UTF-8", Raw("%ED%A0%80")),
    ("stray byte", Raw("a%FFb")),
    ("array", Array(["a", "b"])),
    ("repeated", Repeated(["1", "abc"])),
    ("JSON list", Json(["a", 1])),
    ("JSON object", Json({"a": {"b": 1}})),
    ("JSON bool", Json(True)),
    ("JSON null", Json(None)),
    ("JSON huge int", Json(10**30)),
]
#: MariaDB's run (the parsers are the same as SQLite's): the values a database column or
#: driver could choke on.
FOR_THE_DATABASE = {"too long", "past BIGINT", "negative", "control characters",
                    "lone surrogate as UTF-8", "JSON huge int"}
#: Per URL: plausible values that differ from `World.plausible`'s.
PLAUSIBLE_FOR = {
    "/admin/business/state": {"state": "open"},
    "/admin/manager/switches": {"state": "open"},
    "/admin/manager/greetingstate": {"state": "using"},
    "/admin/set/readmessage": {"state": "readed"},
    "/admin/set/getviews": {"puttime": "week"},
    "/admin/manager/identity": {"require_signed": "0"},
    "/admin/quickreply/import": {"contents": "one\ntwo"},
    "/admin/manager/weixin": {"open_id": "o_plausible"},
}
#: A URL's size is capped by the HTTP server (64 KB, 414): GET's "too long" stays under it.
GET_MAX = 5_000
#: Not the application's parameters: Tornado's own XSRF check reads `_xsrf`.
NOT_PARAMS = {"_xsrf"}
def urls() -> list[tuple[str, str]]:
    out = []
    for methods, sample in documented():
        if sample.startswith(("/app/", "/apps/", "/users/", "/assets/")) or sample == "/":
            continue  # the Pusher API answers its own JSON errors (tests/test_pusher_*.py)
        for method in sorted(methods & {"GET", "POST"}):
            if (method, sample) not in out:
                out.append((method, sample))
    return out


class ReadNames:
    """Which parameters each request's handler reads (`BaseHandler.body_args` lookups and
    Tornado's `get_*argument*`), by (method, path): so each parameter gets its turn."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import tornado.web

        from handlers.base import BaseHandler
        self.read: dict[tuple[str, str], list[str]] = {}
        names = self

        class Recording(dict):  # type: ignore[type-arg]
            def __init__(self, data: dict[str, Any], key: tuple[str, str]) -> None:
                super().__init__(data)
                self.key = key

            def get(self, name: Any, default: Any = None) -> Any:
                names.note(self.key, name)
                return super().get(name, default)

            def __getitem__(self, name: Any) -> Any:
                names.note(self.key, name)
                return super().__getitem__(name)

            def __contains__(self, name: Any) -> bool:
                names.note(self.key, name)
                return super().__contains__(name)

        body_args = BaseHandler.body_args

        def recording_body_args(handler: Any) -> dict[str, Any]:
            if not hasattr(handler, "_body_args"):
                handler._reading_all = True
                try:
                    body_args(handler)
                finally:
                    handler._reading_all = False
                handler._body_args = Recording(handler._body_args, self.key(handler))
            return handler._body_args  # type: ignore[no-any-return]
        monkeypatch.setattr(BaseHandler, "body_args", recording_body_args)
        for method in ("get_argument", "get_arguments", "get_body_argument",
                       "get_body_arguments", "get_query_argument", "get_query_arguments"):
            original = getattr(tornado.web.RequestHandler, method)

            def recording(handler: Any, name: str, *a: Any, _o: Any = original,
                          **kw: Any) -> Any:
                if not getattr(handler, "_reading_all", False):
                    self.note(self.key(handler), name)
                return _o(handler, name, *a, **kw)
            monkeypatch.setattr(tornado.web.RequestHandler, method, recording)

    @staticmethod
    def key(handler: Any) -> tuple[str, str]:
        return handler.request.method, handler.request.path

    def note(self, key: tuple[str, str], name: Any) -> None:
        if isinstance(name, str) and name not in NOT_PARAMS:
            seen = self.read.setdefault(key, [])
            if name not in seen:
                seen.append(name)


def encode(pairs: list[tuple[str, Any]]) -> str:
    """A query / form body: `Raw` values as they are, `Array` as name[]=, `Repeated` twice."""
    out = []
    for name, value in pairs:
        if isinstance(value, Raw):
            out.append(f"{quote(name)}={value}")
        elif isinstance(value, Array):
            out += [f"{quote(name + '[]')}={quote(v)}" for v in value]
        elif isinstance(value, Repeated):
            out += [urlencode({name: v}) for v in value]
        else:
            out.append(urlencode({name: value}))
    return "&".join(out)


@pytest.mark.gen_test(timeout=300)
async def test_no_url_answers_5xx_to_bad_input(base_url: str, ws_base: str, db_url: str,
                                               wolive_server: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every documented URL and method (but the Pusher API's), each parameter its handler
    reads on its own turn: one hostile value in that parameter (`HOSTILE`: too long,
    blank, not a number, negative, huge, NUL and control characters, broken UTF-8, `a[]=`
    arrays, repeated, JSON types and JSON text) while every other is plausible (the real
    business, visitor, channel, agent, message, question, tab, left message and quick reply
    ids), so each parameter's own handling is reached. Every answer is < 500, the JSON
    APIs' a `{code, msg}` object (code non-zero on a 4xx), and no request logs an ERROR.
    The parameters are the ones each handler is seen to read (`ReadNames`), not a list."""
    hostile = HOSTILE if db_url.startswith("sqlite") else \
        [(what, value) for what, value in HOSTILE if what in FOR_THE_DATABASE]
    names = ReadNames(monkeypatch)
    errors: list[logging.LogRecord] = []
    loggers = [logging.getLogger("wolive"), logging.getLogger("tornado")]
    handler = ErrorRecords(errors)
    for lg in loggers:
        lg.addHandler(handler)
    try:
        world = await World.make(base_url, ws_base, db_url, wolive_server.store)
        problems: list[str] = []
        requests = 0

        async def check(method: str, path: str, override: dict[str, Any], where: str) -> bool:
            """One request; False when it was accepted (it may have changed the world)."""
            nonlocal requests
            resp = await world.call(method, path, override)
            requests += 1
            if resp.code >= 500:
                problems.append(f"{where}: {resp.code} {resp.body[:200]!r}")
            elif path.startswith("/admin/") and resp.headers.get(
                    "Content-Type", "").startswith("application/json"):
                parsed: Any = json.loads(resp.body)
                if not (isinstance(parsed, dict) and "code" in parsed and (
                        resp.code < 400 or parsed["code"] != 0 and parsed.get("msg"))):
                    problems.append(f"{where}: {resp.code} {parsed!r:.200}")
            return resp.code >= 400

        for method, path in urls():
            if path == "/admin/login/logout":
                continue  # no parameters; it ends the session the others need
            key = (method, path)
            before = len(errors)
            if not await check(method, path, {}, f"{method} {path} (all plausible)"):
                await world.refresh()  # what it changed (deleted, closed, blacklisted...)
            tried: list[str] = []
            # A parameter read only once another is sent joins the list as it is seen.
            while todo := [n for n in names.read.get(key, []) if n not in tried]:
                for name in todo:
                    tried.append(name)
                    # One parameter's hostile values at once (the server takes concurrent
                    # callers; MariaDB's round trips overlap).
                    refused = await asyncio.gather(*(
                        check(method, path, {name: value}, f"{method} {path} {name}={what}")
                        for what, value in hostile
                        if method == "POST" or not isinstance(value, Json)))
                    if len(errors) > before:
                        problems.append(f"{method} {path} {name}: logged "
                                        f"{errors[before].getMessage()[:300]}")
                        before = len(errors)
                    if not all(refused):
                        await world.refresh()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    # The parameters were found: the handlers of the visitor and agent APIs read them.
    for key, expected in [(("POST", "/admin/event/chats"), {"visiter_id", "content"}),
                          (("GET", "/admin/set/history"), {"visiter_id", "before", "limit"}),
                          (("POST", "/admin/manager/update"), {"service_id", "nick_name"})]:
        assert expected <= set(names.read.get(key, ())), (key, names.read.get(key))
    assert requests > (5000 if len(hostile) == len(HOSTILE) else 1500), requests
    assert problems == [], "\n".join(problems)


class World:
    """A shop with real rows for every id a URL takes; `call` sends a request with one
    parameter overridden and every other plausible."""

    def __init__(self, db_url: str, store: Any, boss: Client, visitor: Client,
                 plausible: dict[str, str]) -> None:
        self.db_url, self.store, self.boss, self.visitor, self.plausible = \
            db_url, store, boss, visitor, plausible
        self.helpers = 1

    @classmethod
    async def make(cls, base_url: str, ws_base: str, db_url: str, store: Any) -> "World":
        boss = Client(base_url)
        assert (await boss.install(BIZ, "boss", PASSWORD)).code == 302
        sock = await PusherSocket.connect(ws_base, cookie=boss.cookie_header())
        assert (await sock.subscribe("kefu1"))["event"] == SUBSCRIBED
        await wait_for(lambda: db_rows(db_url, "SELECT state FROM wolive_service WHERE "
                                       "service_id = 1")[0]["state"] == "online")
        _, boot = await open_visitor_window(base_url, BIZ, "hostile-visitor")
        ids = {"visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"]}
        visitor = Client(base_url)
        ok = cls.ok
        await ok(visitor, "/admin/event/notice", **ids)
        cid = (await ok(visitor, "/admin/event/chats", **ids, content="hello"))["data"]["cid"]
        helper = await ok(boss, "/admin/manager/registForService", user_name="helper",
                          nick_name="Helper", password=PASSWORD, password2=PASSWORD,
                          level="service", business_id=BIZ)
        await ok(boss, "/admin/manager/addquestion", question="Q?", answer="A.",
                 business_id=BIZ)
        await ok(boss, "/admin/set/gettab", title="T", content="C", business_id=BIZ)
        await ok(visitor, "/admin/event/message", **ids, name="Ann", moblie="+86 138 0000",
                 email="ann@example.com", content="call me")
        qr = await ok(boss, "/admin/quickreply/add", content="Thanks!", title="thx")

        def row(sql: str) -> dict[str, Any]:
            return db_rows(db_url, sql)[0]
        plausible = {
            **ids, "service_id": str(helper.get("data", {}).get("service_id") or
                                     row("SELECT MAX(service_id) AS n FROM wolive_service")
                                     ["n"]),
            "cid": str(cid),
            "qid": str(row("SELECT MAX(qid) AS n FROM wolive_question")["n"]),
            "tid": str(row("SELECT MAX(tid) AS n FROM wolive_tablist")["n"]),
            "mid": str(row("SELECT MAX(mid) AS n FROM wolive_message")["n"]),
            "id": str(qr["data"]["id"]), "ids": str(qr["data"]["id"]),
            "username": "boss", "user_name": "boss", "password": PASSWORD,
            "password2": PASSWORD, "oldpass": PASSWORD, "newpass": PASSWORD,
            "nick_name": "Boss", "visiter_name": "Ann", "content": "hello", "title": "hi",
            "question": "Q?", "answer": "A.", "note": "a note", "comment": "good",
            "name": "Ann", "tel": "+86 138 0000 0000", "moblie": "+86 138 0000 0000",
            "phone": "+86 138 0000 0000", "email": "ann@example.com",
            "page": "1", "limit": "10", "before": "0", "after": "0", "score": "5",
            "level": "service", "state": "normal", "status": "available",
            "distribution_rule": "auto", "shared": "0", "q": "hello",
            "start": "2024-01-01", "end": "2024-06-01", "from": "2024-01-01",
            "to": "2024-06-01", "socket_id": "1.1", "channel_name": "private-x",
            "newpass2": PASSWORD, "require_signed": "0", "puttime": "week",
        }
        return cls(db_url, store, boss, visitor, plausible)

    async def call(self, method: str, path: str, override: dict[str, Any]) -> Any:
        name, value = next(iter(override.items())) if override else (None, None)
        if isinstance(value, str) and not isinstance(value, Raw) and method == "GET":
            value = value[:GET_MAX]
        values = {k: v for k, v in {**self.plausible, **PLAUSIBLE_FOR.get(path, {})}.items()
                  if k != name}
        headers: dict[str, str] = {}
        if isinstance(value, Json):
            body: bytes | None = json.dumps({**values, name: value.value}).encode()
            headers["Content-Type"] = "application/json"
            if "_xsrf" in self.boss.cookies:
                headers["X-XSRFToken"] = self.boss.cookies["_xsrf"]
            return await self.boss.fetch(path, "POST", body=body, headers=headers)
        pairs: list[tuple[str, Any]] = list(values.items())
        if name is not None:
            pairs.append((name, value))
        if method == "GET":
            return await self.boss.fetch(path + "?" + encode(pairs))
        if "_xsrf" in self.boss.cookies:
            pairs.append(("_xsrf", self.boss.cookies["_xsrf"]))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.boss.fetch(path, "POST", body=encode(pairs).encode(),
                                     headers=headers)

    #: The rows whose ids are plausible values: (table, id column = parameter name).
    ROWS = [("wolive_service", "service_id"), ("wolive_question", "qid"),
            ("wolive_tablist", "tid"), ("wolive_message", "mid"), ("wolive_quick_reply", "id")]

    async def refresh(self) -> None:
        """Between URLs: the world as `make` left it, whatever the last URL did: the boss
        logged in (a password change ends sessions), the helper agent and the question,
        tab, left message and quick reply there (re-made when deleted), the business open
        and unsigned, the conversation open (unblacklisted, reopened)."""
        p, db = self.plausible, self.db_url
        resp = await self.boss.fetch("/admin/manager/list")
        if resp.code == 401:
            assert (await self.boss.login("boss", PASSWORD)).code == 302

        there = db_rows(db, "SELECT " + ", ".join(
            f"(SELECT COUNT(*) FROM {table} WHERE {column} = %s) AS {column}"
            for table, column in self.ROWS) + ", (SELECT state FROM wolive_queue WHERE "
            "visiter_id = %s) AS queue", (*(p[c] for _, c in self.ROWS), p["visiter_id"]))[0]

        def gone(table: str, column: str) -> bool:
            return not there[column]
        if gone("wolive_service", "service_id"):
            self.helpers += 1
            body = await self.ok(self.boss, "/admin/manager/registForService",
                                 user_name=f"helper{self.helpers}", nick_name="Helper",
                                 password=PASSWORD, password2=PASSWORD, level="service",
                                 business_id=BIZ)
            p["service_id"] = str(body["data"]["service_id"])
        if gone("wolive_question", "qid"):
            p["qid"] = str((await self.ok(self.boss, "/admin/manager/addquestion",
                                          question="Q?", answer="A.", business_id=BIZ)
                            )["data"]["qid"])
        if gone("wolive_tablist", "tid"):
            p["tid"] = str((await self.ok(self.boss, "/admin/set/gettab", title="T",
                                          content="C", business_id=BIZ))["data"]["tid"])
        if gone("wolive_message", "mid"):
            await self.store.add_board_message(BIZ, "Ann", "+86 138 0000", "", "call me")
            p["mid"] = str(db_rows(db, "SELECT MAX(mid) AS n FROM wolive_message")[0]["n"])
        if gone("wolive_quick_reply", "id"):
            p["id"] = p["ids"] = str((await self.ok(
                self.boss, "/admin/quickreply/add", content="Thanks!", title="thx"))["data"]["id"])
        # Back to the plausible settings: open, unsigned visitors, the agent available.
        await self.store.set_switches(BIZ, {"state": "open", "distribution_rule": "auto"})
        await self.store.set_identity_settings(BIZ, require_signed=False)
        await self.ok(self.boss, "/admin/set/status", status="available")
        queue = there["queue"]
        if queue == "in_black_list":
            await self.ok(self.boss, "/admin/set/unblack", visiter_id=p["visiter_id"])
            queue = "complete"
        if queue != "normal":  # a visitor writing again reopens the conversation
            await self.ok(self.visitor, "/admin/event/chats", content="again",
                          **{k: p[k] for k in ("visiter_id", "business_id", "channel")})

    @staticmethod
    async def ok(client: Client, path: str, **form: Any) -> dict[str, Any]:
        code, body = await client.json(path, "POST", form=form)
        assert code == 200 and body["code"] == 0, (path, body)
        return body


@pytest.mark.gen_test(timeout=60)
async def test_numbers_too_big_for_the_database_are_a_400(boss: Client) -> None:
    """A whole number past what a database integer holds is refused with {code, msg}, not
    handed to SQL (where it was an OverflowError and a 500)."""
    huge = "9" * 20
    for method, path, form in [
            ("POST", "/admin/manager/delquestion", {"business_id": "shop1", "qid": huge}),
            ("POST", "/admin/set/deltab", {"business_id": "shop1", "tid": huge}),
            ("GET", "/admin/set/messages", {"business_id": "shop1", "page": huge})]:
        resp = await boss.fetch(path, method, form=form)
        body = json.loads(resp.body)
        assert resp.code == 400 and body["code"] == 1 and "out of range" in body["msg"], \
            (path, resp.code, body)


@pytest.mark.allow_error_logs
@pytest.mark.gen_test(timeout=60)
async def test_an_unexpected_error_is_a_500_with_an_id_logged_once(
        boss: Client, wolive_server: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Anything unexpected: a JSON 500 whose msg carries an id, and one log line (with the
    traceback) carrying the same id, so a user's report finds the log."""

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("boom")
    monkeypatch.setattr(wolive_server.chat, "conversations", broken)
    resp = await boss.fetch("/admin/set/getchats")
    code, body = resp.code, json.loads(resp.body)
    assert code == 500 and body["code"] == 1, body
    # The id is the request's (X-Request-Id), also in the body's request_id.
    error_id = body["msg"].rsplit("(id ", 1)[1].rstrip(")")
    assert error_id == body["request_id"] == resp.headers["X-Request-Id"], body
    assert len(error_id) >= 16, body
    traced = [r for r in caplog.records if r.exc_info]  # besides the access log's line
    assert len(traced) == 1 and error_id in traced[0].getMessage(), caplog.records
