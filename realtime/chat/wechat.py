"""WeChat: agents bind their WeChat `open_id` (`wolive_weixin`), and an agent who is
offline gets a WeChat Official Account template message when a visitor writes to it or
arrives while nobody is online (docs/api.md, "WeChat").

The client speaks the documented WeChat API (`wechat.api_base`, default
https://api.weixin.qq.com):

1. ``GET {api_base}/cgi-bin/token?grant_type=client_credential&appid=..&secret=..`` →
   ``{"access_token", "expires_in"}`` (or ``{"errcode", "errmsg"}``); the token is cached
   until `TOKEN_MARGIN_S` before it expires and fetched by one caller at a time.
2. ``POST {api_base}/cgi-bin/message/template/send?access_token=..`` with
   ``{"touser", "template_id", "url"?, "data": {"first", "keyword1", "keyword2",
   "keyword3", "remark": {"value"}}}`` → ``{"errcode": 0, "errmsg": "ok", "msgid"}``.
   An expired or revoked token (`TOKEN_ERRORS`) is dropped and the send tried once more.

Notifications never block a request: `Chat` tells `WechatNotifier` through its
`visitor_hooks`, which starts a task bounded by `NOTIFY_TIMEOUT_S`; failures are logged as
warnings (never the secret or the token). Disabled while `wechat.appid` is empty.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from config import Config, WechatConfig
from store import NotFound, Store

from .agents import why_not_act_on
from .errors import ChatError
from .facade import Chat
from .values import Agent

log = logging.getLogger("wolive.wechat")

#: One HTTP call to WeChat, connect included (seconds).
REQUEST_TIMEOUT_S = 5.0
#: A whole notification (token and every send) gives up after this (seconds).
NOTIFY_TIMEOUT_S = 15.0
#: Refresh the access token this long before WeChat says it expires (seconds); WeChat
#: gives 7200 s and keeps the old token valid about 5 minutes after a new one is issued.
TOKEN_MARGIN_S = 300
#: Shortest time a token is kept, whatever `expires_in` says (seconds).
MIN_TOKEN_LIFE_S = 60
#: WeChat errcodes meaning "this access_token is invalid or expired".
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: At most one notification per agent and visitor in this long (seconds): a visitor
#: typing ten lines makes one WeChat message, not ten.
NOTIFY_COOLDOWN_S = 300
#: Cooldown entries kept before old ones are pruned (memory bound).
MAX_COOLDOWN_ENTRIES = 10_000
#: WeChat open_ids: 28 characters of [A-Za-z0-9_-] in practice; allow a little slack.
OPEN_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{6,64}$")
#: Bindings per agent (a phone or two; bounds the fan-out of one notification).
MAX_BINDINGS_PER_AGENT = 5
#: Characters of a message quoted in a notification.
EXCERPT_CHARS = 60


class WechatError(Exception):
    """WeChat refused or could not be reached; the message never holds the secret/token."""


def check_config(section: WechatConfig) -> None:
    """Check the `wechat` config section. Raises `ValueError` naming the bad key."""
    parts = urlsplit(section.api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("wechat.api_base: must be an http:// or https:// URL")
    if section.appid:
        for key in ("secret", "template_id"):
            if not getattr(section, key):
                raise ValueError(f"wechat.{key}: required when wechat.appid is set")


class WechatClient:
    """The WeChat Official Account API, as far as template messages need it."""

    def __init__(self, api_base: str, appid: str, secret: str, template_id: str,
                 http: AsyncHTTPClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_base = api_base.rstrip("/")
        self.appid = appid
        self.secret = secret
        self.template_id = template_id
        self._http = http
        self.clock = clock
        self._token = ""
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()
        #: With several nodes, a `realtime.pusher.redis_adapter.RedisAdapter` (its `redis` and
        #: `prefix`): one token for the cluster, kept in Redis and fetched by one node at a
        #: time (WeChat keeps a replaced token valid only about 5 minutes).
        self.shared: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.appid)

    @property
    def http(self) -> AsyncHTTPClient:
        if self._http is None:
            self._http = AsyncHTTPClient()
        return self._http

    async def _call(self, method: str, path: str, query: dict[str, str],
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call; returns the JSON answer. Raises `WechatError` on a transport
        failure, a non-200 status or a body that is not a JSON object."""
        req = HTTPRequest(
            f"{self.api_base}{path}?{urlencode(query)}", method=method,
            body=json.dumps(body, ensure_ascii=False).encode("utf-8") if body else None,
            headers={"Content-Type": "application/json; charset=utf-8"} if body else None,
            connect_timeout=REQUEST_TIMEOUT_S, request_timeout=REQUEST_TIMEOUT_S)
        try:
            resp = await self.http.fetch(req, raise_error=False)
        except OSError as exc:
            raise WechatError(f"{path}: cannot reach WeChat: {exc}") from None
        if resp.code != 200:
            raise WechatError(f"{path}: HTTP {resp.code}")
        try:
            answer = json.loads(resp.body)
        except ValueError:
            raise WechatError(f"{path}: answer is not JSON") from None
        if not isinstance(answer, dict):
            raise WechatError(f"{path}: answer is not a JSON object")
        return answer

    async def access_token(self) -> str:
        """A valid access_token, from the cache or `GET /cgi-bin/token`. Raises
        `WechatError` (with WeChat's errcode/errmsg)."""
        async with self._token_lock:
            if self.shared is not None:
                return await self._shared_token()
            if self._token and self.clock() < self._token_until:
                return self._token
            token, keep_s = await self._fetch_token()
            self._token, self._token_until = token, self.clock() + keep_s
            return token

    def _token_key(self) -> str:
        return f"{self.shared.prefix}:wechat:token:{self.appid}"

    async def _shared_token(self) -> str:
        """The cluster's token from Redis; when there is none, one node (the one that
        takes `…:refresh`) fetches it while the others wait for it."""
        redis, key = self.shared.redis, self._token_key()
        deadline = self.clock() + NOTIFY_TIMEOUT_S
        while True:
            token = await redis.get(key)
            if token:
                return str(token)
            if await redis.set(key + ":refresh", "1", nx=True,
                               px=int(REQUEST_TIMEOUT_S * 2000)):
                try:
                    token = await redis.get(key)  # set just before this node's lock?
                    if token:
                        return str(token)
                    token, keep_s = await self._fetch_token()
                    await redis.set(key, token, px=int(keep_s * 1000))
                    return token
                finally:
                    await redis.delete(key + ":refresh")
            if self.clock() > deadline:
                raise WechatError("/cgi-bin/token: another node's refresh did not finish")
            await asyncio.sleep(0.1)

    async def _fetch_token(self) -> tuple[str, float]:
        """`GET /cgi-bin/token`: (token, seconds to keep it). Raises `WechatError`."""
        answer = await self._call("GET", "/cgi-bin/token", {
            "grant_type": "client_credential", "appid": self.appid,
            "secret": self.secret})
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise WechatError(f"/cgi-bin/token: errcode {answer.get('errcode')}: "
                              f"{answer.get('errmsg')}")
        try:
            life = float(answer.get("expires_in", 7200))
        except (TypeError, ValueError):
            life = 7200.0
        return token, max(MIN_TOKEN_LIFE_S, life - TOKEN_MARGIN_S)

    async def forget_token(self, refused: str | None = None) -> None:
        """Drop the cached token (`refused`: only if it is still that one)."""
        if refused is None or self._token == refused:
            self._token, self._token_until = "", 0.0
        if self.shared is not None:
            key = self._token_key()
            if refused is None or await self.shared.redis.get(key) == refused:
                await self.shared.redis.delete(key)

    async def send_template(self, open_id: str, data: dict[str, Any], url: str = ""
                            ) -> Any:
        """Send one template message; returns WeChat's `msgid`. Raises `WechatError`."""
        body: dict[str, Any] = {"touser": open_id, "template_id": self.template_id,
                                "data": data}
        if url:
            body["url"] = url
        for attempt in (1, 2):
            token = await self.access_token()
            answer = await self._call("POST", "/cgi-bin/message/template/send",
                                      {"access_token": token}, body)
            code = answer.get("errcode", 0)
            if code == 0:
                return answer.get("msgid")
            if code in TOKEN_ERRORS and attempt == 1:
                await self.forget_token(token)
                continue
            raise WechatError(f"template/send: errcode {code}: {answer.get('errmsg')}")
        raise WechatError("template/send: the access token was refused twice")


def _value(text: str) -> dict[str, str]:
    return {"value": text}


def excerpt(message: dict[str, Any]) -> str:
    """What a notification quotes of a message: the text (shortened), or a placeholder
    for an image or a file (with the file's name)."""
    kind = message.get("msg_type", "text")
    content = str(message.get("content", ""))
    if kind == "image":
        return "[图片]"
    if kind == "file":
        return "[文件] " + (content.split("\n", 1)[1] if "\n" in content else "")
    return content if len(content) <= EXCERPT_CHARS else content[:EXCERPT_CHARS] + "…"


class WechatNotifier:
    """Bindings (use cases for `/admin/manager/weixin`) and the notifications."""

    def __init__(self, store: Store, client: WechatClient, console_url: str = "",
                 cooldown_s: float = NOTIFY_COOLDOWN_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.client = client
        self.console_url = console_url
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._last: dict[tuple[int, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, store: Store, cfg: Config) -> WechatNotifier:
        """From the checked config: `wechat.*`, and `server.public_url` for the link to
        the console in each message (none when it is empty)."""
        w = cfg.wechat
        public = cfg.server.public_url.rstrip("/")
        return cls(store, WechatClient(w.api_base, w.appid, w.secret, w.template_id),
                   console_url=f"{public}/admin/index/index" if public else "")

    def attach(self, chat: Chat) -> None:
        """Listen to `chat`'s visitor hooks."""
        chat.visitor_hooks.append(self.on_visitor)

    # ---- bindings -----------------------------------------------------------------------

    async def _target(self, agent: Agent, service_id: int) -> int:
        """The agent whose bindings `agent` acts on: itself, or (manager and up) another
        agent of its business (a super_manager: of any business). Raises `ChatError`."""
        if not service_id or service_id == agent.service_id:
            return agent.service_id
        if agent.level == "service":
            raise ChatError(1, "only managers may change another agent's WeChat / 权限不足",
                            403)
        try:
            row = await self.store.get_service(service_id)
        except NotFound:
            raise ChatError(1, f"no agent {service_id}", 404) from None
        reason = why_not_act_on(agent, row)
        if reason:
            raise ChatError(1, reason, 403)
        return service_id

    async def bindings(self, agent: Agent, service_id: int = 0) -> list[dict[str, Any]]:
        """The open_ids bound to an agent: `[{wid, service_id, open_id}]`."""
        return await self.store.weixin_of(await self._target(agent, service_id))

    async def bind(self, agent: Agent, open_id: str, service_id: int = 0) -> dict[str, Any]:
        """Bind `open_id`; returns the row. Raises `ChatError` 400 (malformed open_id),
        403/404 (`_target`), 409 (already `MAX_BINDINGS_PER_AGENT`)."""
        if not OPEN_ID_RE.match(open_id or ""):
            raise ChatError(1, "open_id must be 6-64 letters, digits, _ or -", 400)
        target = await self._target(agent, service_id)
        row = await self.store.add_weixin(target, open_id, MAX_BINDINGS_PER_AGENT)
        if row is None:
            raise ChatError(1, f"an agent may bind at most {MAX_BINDINGS_PER_AGENT} WeChat "
                               "accounts", 409)
        return row

    async def unbind(self, agent: Agent, open_id: str, service_id: int = 0) -> int:
        """Unbind; returns how many bindings went. Raises `ChatError` as `bind`, and 404
        when it was not bound."""
        if not OPEN_ID_RE.match(open_id or ""):
            raise ChatError(1, "open_id must be 6-64 letters, digits, _ or -", 400)
        removed = await self.store.remove_weixin(await self._target(agent, service_id),
                                                 open_id)
        if not removed:
            raise ChatError(1, "this open_id is not bound", 404)
        return removed

    # ---- notifications ------------------------------------------------------------------

    def on_visitor(self, kind: str, data: dict[str, Any]) -> None:
        """`Chat.visitor_hooks` listener: start a notification task; never blocks."""
        if not self.client.enabled or kind not in ("message", "unattended"):
            return
        task = asyncio.ensure_future(self._bounded(kind, dict(data)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bounded(self, kind: str, data: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self.notify(kind, data), NOTIFY_TIMEOUT_S)
        except TimeoutError:
            log.warning("wechat: notification about %s gave up after %s s",
                        data.get("visiter_id"), NOTIFY_TIMEOUT_S)
        except Exception:  # a notification must never take anything else down
            log.warning("wechat: notification about %s failed", data.get("visiter_id"),
                        exc_info=True)

    def _due(self, service_id: int, visiter_id: str) -> bool:
        """True (and the clock started) when this agent was not told about this visitor
        within `cooldown_s`."""
        now = self.clock()
        key = (service_id, visiter_id)
        last = self._last.get(key)
        if last is not None and now - last < self.cooldown_s:
            return False
        if len(self._last) >= MAX_COOLDOWN_ENTRIES:
            self._last = {k: t for k, t in self._last.items() if now - t < self.cooldown_s}
        self._last[key] = now
        return True

    async def notify(self, kind: str, data: dict[str, Any]) -> int:
        """Send the template messages for one happening; returns how many went.

        "message" (a visitor's message): its agent, when offline (every offline agent of
        the business while the visitor waits unclaimed). "unattended" (a visitor found
        nobody online): every offline agent of the business. Each agent is told about one
        visitor at most once per `cooldown_s`. A failed send is logged and the rest go on.
        """
        business_id = str(data.get("business_id", ""))
        visiter_id = str(data.get("visiter_id", ""))
        service_id = int(data.get("service_id") or 0) if kind == "message" else 0
        targets = await self.store.offline_weixin_targets(business_id, service_id or None)
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(
            data.get("timestamp") if isinstance(data.get("timestamp"), int) else None))
        name = str(data.get("visiter_name", "")) or visiter_id
        due = {sid for sid in {t["service_id"] for t in targets} if self._due(sid, visiter_id)}
        sent = 0
        for target in targets:
            if target["service_id"] not in due:
                continue
            if kind == "message":
                first = f"访客「{name}」给您发来新消息"
                remark = excerpt(data)
            else:
                first = f"访客「{name}」正在咨询，当前无客服在线"
                remark = str(data.get("from_url", ""))[:EXCERPT_CHARS]
            payload = {"first": _value(first), "keyword1": _value(name),
                       "keyword2": _value(stamp), "keyword3": _value(target["nick_name"]),
                       "remark": _value(remark)}
            try:
                await self.client.send_template(target["open_id"], payload, self.console_url)
            except WechatError as exc:
                log.warning("wechat: template message to agent %s failed: %s",
                            target["service_id"], exc)
                continue
            sent += 1
        return sent

    async def close(self) -> None:
        """Cancel notifications still in flight (shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
