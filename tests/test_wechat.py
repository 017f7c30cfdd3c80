"""WeChat: agents bind open_ids; an offline agent gets a template message, sent through the
documented WeChat API (token, then template/send) to a local receiver started here."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

import wolive
from config import WechatConfig
from conftest import write_config
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

OPEN_ID = "oWx_8s9fJ2kLmN3pQ4rS5tU6vW7x"
OK = "pusher_internal:subscription_succeeded"


# ---- the WeChat API, played locally ------------------------------------------------------

@dataclass
class Receiver:
    url: str = ""
    token_calls: list[dict[str, str]] = field(default_factory=list)
    sends: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    #: Answers for the next sends, in order; then {"errcode": 0, ...}.
    send_answers: list[dict[str, Any]] = field(default_factory=list)
    token_delay_s: float = 0.0
    tokens_issued: int = 0


class TokenHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        r: Receiver = self.settings["receiver"]
        r.token_calls.append({k: self.get_query_argument(k) for k in self.request.arguments})
        if r.token_delay_s:
            await asyncio.sleep(r.token_delay_s)
        if self.get_query_argument("secret", "") != "wx-secret":
            self.finish({"errcode": 40001, "errmsg": "invalid credential"})
            return
        r.tokens_issued += 1
        self.finish({"access_token": f"TOKEN-{r.tokens_issued}", "expires_in": 7200})


class SendHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        r: Receiver = self.settings["receiver"]
        r.sends.append(({k: self.get_query_argument(k) for k in self.request.arguments},
                        json.loads(self.request.body)))
        self.finish(r.send_answers.pop(0) if r.send_answers else
                    {"errcode": 0, "errmsg": "ok", "msgid": len(r.sends)})


@pytest.fixture
def receiver(io_loop: Any) -> Iterator[Receiver]:
    r = Receiver()
    app = tornado.web.Application([(r"/cgi-bin/token", TokenHandler),
                                   (r"/cgi-bin/message/template/send", SendHandler)],
                                  receiver=r)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    r.url = f"http://127.0.0.1:{port}"
    yield r
    server.stop()


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, receiver: Receiver) -> dict[str, Any]:
    return wolive.load_config(str(write_config(tmp_path, db_url)), {
        "wechat.api_base": receiver.url, "wechat.appid": "wx1234567890abcdef",
        "wechat.secret": "wx-secret", "wechat.template_id": "TPL-visitor-waiting",
        "server.public_url": "https://kefu.example.com"})


# ---- set-up ------------------------------------------------------------------------------

async def add_agent(server: Any, business_id: str, user: str, level: str = "service") -> int:
    from handlers.install import hash_password
    row = await server.store.add_service(business_id, user, user.title(),
                                         await hash_password(PASSWORD, 4), level=level)
    return int(row["service_id"])


async def login(base_url: str, user: str) -> Client:
    c = Client(base_url)
    assert (await c.login(user, PASSWORD)).code == 302
    return c


async def bind(agent: Client, open_id: str = OPEN_ID, **extra: Any) -> tuple[int, Any]:
    return await agent.json("/admin/manager/weixin", "POST", form={"open_id": open_id,
                                                                    **extra})


async def assigned_then_offline(base_url: str, ws_base: str, server: Any,
                                visiter_id: str = "v-wx") -> tuple[Client, Client, dict]:
    """Agent 1 (bound to OPEN_ID) takes a visitor, then goes offline."""
    db = server.config.database.url
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    assert (await bind(agent))[1]["code"] == 0
    sock = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await sock.subscribe("kefu1"))["event"] == OK
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")
                   [0]["state"] == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, visiter_id, visiter_name="王小姐")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": visiter_id, "business_id": BIZ, "channel": boot["channel"],
        "visiter_name": "王小姐"})
    assert body["code"] == 0
    sock.close()
    assert await server.presence.apply("kefu1", False)  # no need to wait out the grace
    assert db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")[0]["state"] \
        == "offline"
    return agent, visitor, boot


async def say(visitor: Client, boot: dict[str, Any], content: str) -> dict[str, Any]:
    code, body = await visitor.json("/admin/event/chats", "POST", form={
        "visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"],
        "content": content})
    assert body["code"] == 0, body
    return body


# ---- notifications -----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_offline_agent_gets_a_template_message(
        base_url: str, ws_base: str, wolive_server: Any, receiver: Receiver) -> None:
    agent, visitor, boot = await assigned_then_offline(base_url, ws_base, wolive_server)
    await say(visitor, boot, "请问这件衣服有L码吗？")
    await wait_for(lambda: receiver.sends)
    assert receiver.token_calls == [{"grant_type": "client_credential",
                                     "appid": "wx1234567890abcdef", "secret": "wx-secret"}]
    query, body = receiver.sends[0]
    assert query == {"access_token": "TOKEN-1"}
    assert body["touser"] == OPEN_ID
    assert body["template_id"] == "TPL-visitor-waiting"
    assert body["url"] == "https://kefu.example.com/admin/index/index"
    data = body["data"]
    assert set(data) == {"first", "keyword1", "keyword2", "keyword3", "remark"}
    assert data["first"]["value"] == "访客「王小姐」给您发来新消息"
    assert data["keyword1"]["value"] == "王小姐"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d$", data["keyword2"]["value"])
    assert data["keyword3"]["value"] == "Boss"
    assert data["remark"]["value"] == "请问这件衣服有L码吗？"

    # More lines from the same visitor within the cooldown: no more messages.
    await say(visitor, boot, "在吗")
    await asyncio.sleep(0.3)
    assert len(receiver.sends) == 1
    # Another visitor: a message again, with the cached token.
    await wolive_server.store.put_queue("v-two", BIZ, 1)
    other, other_boot = await open_visitor_window(base_url, BIZ, "v-two")
    await say(other, other_boot, "x" * 100)
    await wait_for(lambda: len(receiver.sends) == 2)
    assert len(receiver.token_calls) == 1
    assert receiver.sends[1][0] == {"access_token": "TOKEN-1"}
    assert receiver.sends[1][1]["data"]["remark"]["value"] == "x" * 60 + "…"


@pytest.mark.gen_test(timeout=20)
async def test_online_agent_gets_nothing(base_url: str, ws_base: str, wolive_server: Any,
                                         receiver: Receiver) -> None:
    db = wolive_server.config.database.url
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    assert (await bind(agent))[1]["code"] == 0
    sock = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await sock.subscribe("kefu1"))["event"] == OK
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")
                   [0]["state"] == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-on")
    await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "v-on", "business_id": BIZ, "channel": boot["channel"]})
    await say(visitor, boot, "hello")
    await sock.expect("cu-event", "kefu1")
    await asyncio.sleep(0.3)
    assert receiver.token_calls == [] and receiver.sends == []


@pytest.mark.gen_test(timeout=20)
async def test_unattended_visitor_notifies_offline_agents(
        boss: Client, base_url: str, wolive_server: Any, receiver: Receiver) -> None:
    agent = boss
    assert (await bind(agent))[1]["code"] == 0
    sid = await add_agent(wolive_server, BIZ, "helper")
    helper = await login(base_url, "helper")
    assert (await bind(helper, "oHelper_open_id_123456"))[1]["code"] == 0
    await wolive_server.store.add_business("shop2")
    await add_agent(wolive_server, "shop2", "outsider")
    outsider = await login(base_url, "outsider")
    assert (await bind(outsider, "oOutsider_open_id_99999"))[1]["code"] == 0

    visitor, boot = await open_visitor_window(base_url, BIZ, "v-late")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "v-late", "business_id": BIZ, "channel": boot["channel"],
        "record": "https://shop.example/item/7"})
    assert body["code"] == 3
    await wait_for(lambda: len(receiver.sends) == 2)
    await asyncio.sleep(0.2)
    sent = sorted((b["touser"], b["data"]["keyword3"]["value"]) for _, b in receiver.sends)
    assert sent == [("oHelper_open_id_123456", "Helper"), (OPEN_ID, "Boss")]  # not shop2's
    first = receiver.sends[0][1]["data"]
    assert first["first"]["value"].endswith("正在咨询，当前无客服在线")
    assert first["remark"]["value"] == "https://shop.example/item/7"
    assert sid > 1


@pytest.mark.gen_test(timeout=20)
async def test_expired_token_is_renewed_once(base_url: str, ws_base: str, wolive_server: Any,
                                             receiver: Receiver) -> None:
    receiver.send_answers = [{"errcode": 42001, "errmsg": "access_token expired"}]
    agent, visitor, boot = await assigned_then_offline(base_url, ws_base, wolive_server)
    await say(visitor, boot, "hi")
    await wait_for(lambda: len(receiver.sends) == 2)
    assert [q["access_token"] for q, _ in receiver.sends] == ["TOKEN-1", "TOKEN-2"]
    assert len(receiver.token_calls) == 2


@pytest.mark.gen_test(timeout=20)
async def test_failures_are_logged_and_never_slow_the_visitor(
        base_url: str, ws_base: str, wolive_server: Any, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    receiver.send_answers = [{"errcode": 40003, "errmsg": "invalid openid"}]
    agent, visitor, boot = await assigned_then_offline(base_url, ws_base, wolive_server)
    with caplog.at_level(logging.WARNING, logger="wolive.wechat"):
        await say(visitor, boot, "hi")
        await wait_for(lambda: "errcode 40003" in caplog.text)
    assert "wx-secret" not in caplog.text and "TOKEN-1" not in caplog.text
    # A WeChat that answers slowly does not hold the visitor's request up.
    receiver.token_delay_s = 3.0
    await wolive_server.app.settings["wolive_wechat"].client.forget_token()
    other, other_boot = await open_visitor_window(base_url, BIZ, "v-slow")
    await wolive_server.store.put_queue("v-slow", BIZ, 1)
    started = time.monotonic()
    await say(other, other_boot, "anyone?")
    assert time.monotonic() - started < 1.0
    await wait_for(lambda: len(receiver.token_calls) == 2)


@pytest.mark.gen_test(timeout=20)
async def test_unreachable_wechat_is_a_warning(base_url: str, ws_base: str, cfg: dict,
                                               wolive_server: Any, receiver: Receiver,
                                               caplog: pytest.LogCaptureFixture) -> None:
    client = wolive_server.app.settings["wolive_wechat"].client
    client.api_base = "http://127.0.0.1:9"  # discard port: connection refused
    agent, visitor, boot = await assigned_then_offline(base_url, ws_base, wolive_server)
    with caplog.at_level(logging.WARNING, logger="wolive.wechat"):
        await say(visitor, boot, "hi")
        await wait_for(lambda: "cannot reach WeChat" in caplog.text)
    assert receiver.sends == []


@pytest.mark.gen_test(timeout=20)
async def test_disabled_without_appid(base_url: str, ws_base: str, wolive_server: Any,
                                      receiver: Receiver) -> None:
    wolive_server.app.settings["wolive_wechat"].client.appid = ""
    agent, visitor, boot = await assigned_then_offline(base_url, ws_base, wolive_server)
    await say(visitor, boot, "hi")
    await asyncio.sleep(0.3)
    assert receiver.token_calls == [] and receiver.sends == []


# ---- bindings ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_bind_list_unbind(base_url: str, wolive_server: Any) -> None:
    db = wolive_server.config.database.url
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    code, body = await agent.json("/admin/manager/weixin")
    assert (code, body) == (200, {"code": 0, "msg": "", "data": []})
    code, body = await bind(agent)
    assert (code, body["code"]) == (200, 0)
    assert body["data"]["open_id"] == OPEN_ID and body["data"]["service_id"] == 1
    code, again = await bind(agent)  # idempotent
    assert again["data"]["wid"] == body["data"]["wid"]
    assert db_rows(db, "SELECT service_id, open_id FROM wolive_weixin") == [
        {"service_id": 1, "open_id": OPEN_ID}]
    code, listed = await agent.json("/admin/manager/weixin")
    assert [r["open_id"] for r in listed["data"]] == [OPEN_ID]
    code, body = await bind(agent, action="unbind")
    assert (code, body["data"]) == (200, {"removed": 1})
    code, body = await bind(agent, action="unbind")
    assert (code, body["code"]) == (404, 1)
    assert db_rows(db, "SELECT * FROM wolive_weixin") == []
    for bad in ("", "has space", "<script>", "x" * 65, "abc"):
        code, body = await bind(agent, bad)
        assert (code, body["code"]) == (400, 1), bad
    code, body = await bind(agent, action="drop")
    assert (code, body["code"]) == (400, 1)
    for i in range(5):
        assert (await bind(agent, f"oOpenId_{i:06d}"))[1]["code"] == 0
    code, body = await bind(agent, "oOpenId_999999")
    assert (code, body["code"]) == (409, 1)


@pytest.mark.gen_test(timeout=20)
async def test_binding_rules_login_xsrf_level_business(base_url: str,
                                                       wolive_server: Any) -> None:
    db = wolive_server.config.database.url
    boss = Client(base_url)
    assert (await boss.install(BIZ, "boss", PASSWORD)).code == 302
    anonymous = Client(base_url)
    await anonymous.get_xsrf()
    code, body = await anonymous.json("/admin/manager/weixin")
    assert (code, body["code"]) == (401, 1)
    code, body = await bind(anonymous)
    assert (code, body["code"]) == (401, 1)
    code, body = await boss.json("/admin/manager/weixin", "POST", form={"open_id": OPEN_ID},
                                 xsrf=False)
    assert code == 403 and "_xsrf" in body["msg"]
    # A plain agent manages only its own bindings.
    plain_id = await add_agent(wolive_server, BIZ, "plain")
    plain = await login(base_url, "plain")
    code, body = await bind(plain, service_id=1)
    assert (code, body["code"]) == (403, 1)
    code, body = await plain.json("/admin/manager/weixin", form={"service_id": 1})
    assert (code, body["code"]) == (403, 1)
    assert (await bind(plain))[1]["data"]["service_id"] == plain_id
    # A manager manages its business's agents, not another business's.
    await add_agent(wolive_server, BIZ, "lead", level="manager")
    lead = await login(base_url, "lead")
    code, body = await bind(lead, "oLead_for_plain_0001", service_id=plain_id)
    assert (code, body["data"]["service_id"]) == (200, plain_id)
    await wolive_server.store.add_business("shop2")
    await add_agent(wolive_server, "shop2", "rival", level="manager")
    rival = await login(base_url, "rival")
    code, body = await bind(rival, service_id=plain_id)
    assert (code, body["code"]) == (403, 1)
    code, body = await rival.json("/admin/manager/weixin", form={"service_id": plain_id})
    assert (code, body["code"]) == (403, 1)
    code, body = await bind(rival, service_id=999)
    assert (code, body["code"]) == (404, 1)
    rows = db_rows(db, "SELECT service_id, open_id FROM wolive_weixin ORDER BY wid")
    assert rows == [{"service_id": plain_id, "open_id": OPEN_ID},
                    {"service_id": plain_id, "open_id": "oLead_for_plain_0001"}]


def test_wechat_config_is_checked() -> None:
    defaults = wolive.load_config(None).wechat
    assert defaults == WechatConfig(api_base="https://api.weixin.qq.com", appid="", secret="",
                                    template_id="")
    with pytest.raises(wolive.ConfigProblem, match="wechat.secret: required"):
        wolive.load_config(None, {"wechat.appid": "wx1"})
    with pytest.raises(wolive.ConfigProblem, match="wechat.api_base"):
        wolive.load_config(None, {"wechat.api_base": "api.weixin.qq.com"})
