"""The base handler: dependencies from settings, who is calling, answers and errors in one place.

Every JSON answer is `{code, msg, data?}` (the WoLive document's shape); a handler raises
`ApiError` (or lets a `ChatError` / store error escape) and `write_error` renders it, so no
caller ever sees a traceback. Error answers add `request_id` (the request's
`X-Request-Id`, see handlers/logs.py), which the logs carry too.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, cast

import tornado.web

from config import Config
from realtime import inputs
from realtime.chat.agent_status import AgentStatus
from realtime.chat.agents import LEVEL_RANK, Agents
from realtime.chat.content import Content
from realtime.chat.errors import ChatError
from realtime.chat.facade import Chat
from realtime.chat.history import History
from realtime.chat.presence import PresenceTracker
from realtime.chat.quick_replies import QuickReplies
from realtime.chat.ratings import Ratings
from realtime.chat.reports import Reports
from realtime.chat.signals import Signals
from realtime.chat.uploads import Uploads
from realtime.chat.video import Video
from realtime.chat.visitor_cards import VisitorCards
from realtime.chat.values import Agent
from realtime.chat.wechat import WechatNotifier
from realtime.metrics import Metrics
from realtime.pusher.hub import Hub
from store import Conflict, NotFound, Store, Unavailable

from .services import SETTINGS_KEY, Readiness, Services, services_of

if TYPE_CHECKING:  # handlers.ops imports this module
    from .ops import MetricsAccess

log = logging.getLogger("wolive.http")


def access_log_level(status: int, quiet: frozenset[int] = frozenset()) -> int:
    """The access log's level for an answer: success at DEBUG (a line per Pusher API publish
    cost 18 % of its CPU, docs/performance.md), refusals (4xx) and 503 (a server that is
    shutting down, an expected answer) at WARNING, other 5xx at ERROR. A status in `quiet`
    (a handler's `quiet_statuses`: an answer that is part of normal use, like a 429 to a
    typing signal) is logged at INFO."""
    if status < 400:
        return logging.DEBUG
    if status in quiet:
        return logging.INFO
    return logging.WARNING if status < 500 or status == 503 else logging.ERROR


#: Seconds a client is told to wait (`Retry-After`) while the database is unavailable; the
#: visitor window and the console retry on their own.
RETRY_AFTER_S = 5
UNAVAILABLE_MSG = "service briefly unavailable, retrying / 服务暂时不可用，正在重试"

AGENT_COOKIE = "wolive_agent"
#: Days an agent stays logged in without coming back.
AGENT_COOKIE_DAYS = 7


class ApiError(tornado.web.HTTPError):
    """Answer `{code, msg}` with HTTP `status`."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(status, reason=None, log_message=msg)
        self.code = code
        self.msg = msg


def password_tag(password_hash: str) -> str:
    """Bound into the session cookie, so changing the password ends every other session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class BaseHandler(tornado.web.RequestHandler):
    """Typed access to the services `wolive.make_app` built (`handlers.services`), plus the
    calling agent."""

    #: Pages render HTML errors; APIs (the default) answer JSON.
    html_errors = False
    #: HEAD answered as GET without the body (pages always; health checks and fixed files,
    #: which probes and players ask with HEAD); other APIs answer 405.
    head_like_get = False
    #: Answer statuses logged at INFO, not WARNING (`access_log_level`).
    quiet_statuses: frozenset[int] = frozenset()
    #: Every answer logged at DEBUG (health checks, which a load balancer calls every few
    #: seconds).
    access_log_debug = False

    @property
    def request_id(self) -> str:
        """This request's id (`handlers.logs`)."""
        return str(getattr(self.request, "request_id", "") or "-")

    def set_default_headers(self) -> None:
        # No page or answer of the console may be framed by another site (clickjacking).
        # The visitor chat window allows it (handlers/visitor.py `HomeHandler`): sites show
        # it in their in-page panel.
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")

    async def head(self, *args: Any, **kwargs: Any) -> None:
        """HEAD on a page (`html_errors`) or a `head_like_get` handler is its GET without the
        body (RFC 9110 9.3.2; Tornado drops the body of a HEAD answer); an API keeps
        answering 405."""
        get = type(self).get
        if (not (self.html_errors or self.head_like_get)
                or get is tornado.web.RequestHandler.get):
            raise tornado.web.HTTPError(405)
        result = get(self, *args, **kwargs)
        if inspect.isawaitable(result):
            await result

    # ---- the services (built once by `wolive.make_app`, handlers/services.py) -----------

    @property
    def services(self) -> Services:
        return services_of(self.settings)

    @property
    def config(self) -> Config:
        """The server's checked configuration (`config.Config`)."""
        return self.services.config

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def hub(self) -> Hub:
        return self.services.hub

    @property
    def chat(self) -> Chat:
        return self.services.chat

    @property
    def presence(self) -> PresenceTracker:
        return self.services.presence

    @property
    def agents(self) -> Agents:
        return self.services.agents

    @property
    def agent_status(self) -> AgentStatus:
        return self.services.agent_status

    @property
    def content(self) -> Content:
        return self.services.content

    @property
    def history(self) -> History:
        return self.services.history

    @property
    def quick_replies(self) -> QuickReplies:
        return self.services.quick_replies

    @property
    def ratings(self) -> Ratings:
        return self.services.ratings

    @property
    def reports(self) -> Reports:
        return self.services.reports

    @property
    def signals(self) -> Signals:
        return self.services.signals

    @property
    def uploads(self) -> Uploads:
        return self.services.uploads

    @property
    def video(self) -> Video:
        return self.services.video

    @property
    def visitor_cards(self) -> VisitorCards:
        return self.services.visitor_cards

    @property
    def wechat(self) -> WechatNotifier:
        return self.services.wechat

    @property
    def pusher_client(self) -> Mapping[str, Any]:
        return self.services.pusher_client

    @property
    def metrics(self) -> Metrics | None:
        return self.services.metrics

    @property
    def metrics_access(self) -> MetricsAccess | None:
        return self.services.metrics_access

    @property
    def ports(self) -> dict[str, int]:
        return self.services.ports

    @property
    def readiness(self) -> Readiness:
        return self.services.readiness

    # ---- who is calling -----------------------------------------------------------------

    async def prepare(self) -> None:
        self.agent_row: Optional[dict[str, Any]] = None
        raw = self.get_signed_cookie(AGENT_COOKIE, max_age_days=AGENT_COOKIE_DAYS)
        if raw:
            try:
                sid_s, tag = raw.decode().split(":", 1)
                row = await self.store.get_service(int(sid_s))
            except (ValueError, NotFound):
                row = None
            if row and tag == password_tag(row["password"]):
                self.agent_row = row

    def get_current_user(self) -> Optional[Agent]:
        row = getattr(self, "agent_row", None)
        if not row:
            return None
        return Agent(service_id=row["service_id"], business_id=row["business_id"],
                     level=row["level"], nick_name=row["nick_name"], avatar=row["avatar"])

    @property
    def agent(self) -> Agent:
        """The logged-in agent; raises `ApiError` 401 when nobody is."""
        agent = self.current_user
        if agent is None:
            raise ApiError(401, 1, "not logged in / 请先登录")
        return cast(Agent, agent)

    def login_agent(self, row: dict[str, Any]) -> None:
        self.set_signed_cookie(AGENT_COOKIE, f"{row['service_id']}:{password_tag(row['password'])}",
                               expires_days=AGENT_COOKIE_DAYS, httponly=True, samesite="Lax",
                               secure=self.request.protocol == "https")
        self.agent_row = row

    # ---- input --------------------------------------------------------------------------

    def body_args(self) -> dict[str, Any]:
        """Arguments from a JSON body, a form body or the query, in that order of preference."""
        if not hasattr(self, "_body_args"):
            args: dict[str, Any] = {}
            ctype = self.request.headers.get("Content-Type", "")
            if ctype.startswith("application/json") and self.request.body:
                try:
                    parsed = inputs.loads(self.request.body)
                except inputs.InputError as exc:
                    raise ApiError(400, 1, f"body is not valid JSON: {exc}") from None
                if not isinstance(parsed, dict):
                    raise ApiError(400, 1, "JSON body must be an object")
                args.update(parsed)
            for name in list(self.request.arguments):
                if name not in args:
                    args[name] = self.get_argument(name, strip=False)
            self._body_args = args
        return self._body_args

    def arg(self, name: str, default: Optional[str] = None, max_len: int = 255,
            required: bool = False) -> str:
        """One text argument; raises `ApiError` 400 when missing, not text, or too long."""
        value = self.body_args().get(name, default)
        if value is None:
            if required:
                raise ApiError(400, 1, f"missing parameter: {name}")
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ApiError(400, 1, f"parameter {name} must be text")
        if "\x00" in value:
            raise ApiError(400, 1, f"parameter {name} must not contain NUL characters")
        if len(value) > max_len:
            raise ApiError(413 if max_len > 1000 else 400, 1,
                           f"parameter {name} is over {max_len} characters")
        if required and not value.strip():
            raise ApiError(400, 1, f"missing parameter: {name}")
        return value

    def int_arg(self, name: str, default: int = 0, lo: int = -2**63,
                hi: int = 2**63 - 1) -> int:
        """A whole-number argument (ASCII digits, nothing around them) within `lo`..`hi`
        (a database BIGINT by default); `default` when absent or empty. Raises `ApiError`
        400 otherwise."""
        raw = self.arg(name, None, max_len=20)
        if raw == "":
            return default
        try:
            return inputs.whole_number(raw, lo, hi)
        except inputs.InputError as exc:
            raise ApiError(400, 1, f"parameter {name} {exc}") from None

    def client_ip(self) -> str:
        return self.request.remote_ip or ""

    # ---- answers ------------------------------------------------------------------------

    def answer(self, code: int = 0, msg: str = "", data: Any = None, status: int = 200) -> None:
        self.set_status(status)
        body: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            body["data"] = data
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False, default=str))

    def _cluster_unavailable(self, exc: BaseException | None) -> bool:
        """Whether `exc` says the adapter's shared store (Redis) cannot be reached."""
        services = self.settings.get(SETTINGS_KEY)
        return exc is not None and services is not None and isinstance(
            exc, services.hub.adapter.unavailable_errors)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Refusals (use-case and store errors) are answers, not faults: the access log has
        them; an unavailable database is logged by the store once per outage. Anything else
        as Tornado logs it (a traceback)."""
        if isinstance(value, (ChatError, NotFound, Conflict, Unavailable)):
            return
        if self._cluster_unavailable(value):
            # The cluster's shared store (Redis) out of reach: a 503, noted without a trace.
            log.warning("request %s: the cluster store is unavailable (%s)", self.request_id,
                        value, extra={"request_id": self.request_id})
            return
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
            return
        # Unexpected: logged once, with the request id the caller is shown (write_error).
        log.error("internal error %s: %s %s", self.request_id, self.request.method,
                  self.request.uri, exc_info=(typ, value, tb), extra={
                      "request_id": self.request_id})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one place an exception becomes an answer: `ApiError` / `HTTPError` as raised,
        `ChatError` with its code and status, `NotFound` 404, `Conflict` 409, `Unavailable`
        (or the adapter's `unavailable_errors`: Redis out of reach) 503 with `Retry-After`,
        anything else 500."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ChatError):
            status_code, code, msg = exc.status, exc.code, exc.msg
        elif isinstance(exc, NotFound):
            status_code, code, msg = 404, 1, f"not found: {exc}"
        elif isinstance(exc, Conflict):
            status_code, code, msg = 409, 1, f"conflict: {exc}"
        elif isinstance(exc, Unavailable) or self._cluster_unavailable(exc):
            status_code, code, msg = 503, 1, UNAVAILABLE_MSG
            self.set_header("Retry-After", str(RETRY_AFTER_S))
        elif isinstance(exc, ApiError):
            code, msg = exc.code, exc.msg
        elif isinstance(exc, tornado.web.HTTPError):
            code, msg = 1, exc.log_message or self._reason
        else:
            code, msg = 1, f"internal error / 服务器内部错误 (id {self.request_id})"
        if status_code == 403 and "XSRF" in (msg or ""):
            msg = "missing or wrong _xsrf token: reload the page"
        self.set_status(status_code)
        if self.html_errors:
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(self.render_string("error.html", status=status_code, msg=msg,
                                           request_id=self.request_id))
        else:
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"code": code, "msg": msg, "request_id": self.request_id},
                                   ensure_ascii=False))


class VisitorApiHandler(BaseHandler):
    """Endpoints called by visitor windows and by sites' own code: the caller proves itself
    with its unguessable channel, not a cookie, so there is nothing for CSRF to ride on."""

    def check_xsrf_cookie(self) -> None:
        return None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # The document's nginx config answered these URLs with a wildcard CORS header.
        self.set_header("Access-Control-Allow-Origin", "*")

    def options(self, *args: Any) -> None:
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_status(204)
        self.finish()


class PageHandler(BaseHandler):
    """An HTML page of the console: errors render as a page, not JSON."""

    html_errors = True


#: Agent levels, lowest first (WoLive document, `wolive_service.level`).
LEVELS = LEVEL_RANK


class AgentApiHandler(BaseHandler):
    """Console endpoints: a logged-in agent, and the `_xsrf` token on every POST."""

    async def prepare(self) -> None:
        await super().prepare()
        if self.current_user is None:
            raise ApiError(401, 1, "not logged in / 请先登录")

    def require_level(self, level: str) -> Agent:
        """The agent, if its level is at least `level`; else `ApiError` 403."""
        agent = self.agent
        if LEVELS.get(agent.level, 0) < LEVELS[level]:
            raise ApiError(403, 1, f"needs level {level} / 权限不足")
        return agent

    def require_business(self, business_id: str) -> Agent:
        """The agent, if it may touch `business_id`: its own, or any for a super_manager.
        Else `ApiError` 403 (no agent reads or changes another business's data)."""
        agent = self.agent
        if agent.level != "super_manager" and agent.business_id != business_id:
            raise ApiError(403, 1, "not your business / 无权访问其他商户")
        return agent


# ---- typing indicators and read receipts (handlers/conversations.py, handlers/visitor.py) ----

def flag(handler: BaseHandler, name: str = "typing") -> bool:
    raw = handler.arg(name, "1", max_len=5).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(400, 1, f"parameter {name} must be 0 or 1")


#: A typing signal over the rate is an ordinary answer (the pages throttle their own, see
#: static/assets/js/typing.js): logged at INFO, not as a warning per request.
QUIET_RATE_LIMIT = frozenset({429})
