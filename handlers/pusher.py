"""The Pusher endpoints: the WebSocket `/app/{key}`, the HTTP API `/apps/{app_id}/...`, and
wolive's own channel authorization (`/pusher/auth`) and user authentication
(`/pusher/user-auth`) endpoints for the agent console.

Thin glue over the engine (`realtime.pusher`): the socket, its frames and pings are
`realtime.pusher.transport`'s, protocol logic `realtime.pusher.hub`'s, the HTTP API's use
cases `realtime.pusher.http_api`'s, signatures `realtime.pusher.signing`'s; who may join
what is `realtime.chat.channels.may_join`. What is here: who the caller is (the agent cookie), the
HTTP API's handlers, and the lean path for its publishes.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import tornado
import tornado.httputil
import tornado.routing
import tornado.web
import tornado.websocket

from realtime.pusher import protocol as p
from realtime.pusher import http_api as pusher_api
from realtime.pusher import transport
from realtime.pusher.adapter import run_inline
from realtime.chat.channels import may_join
from realtime.pusher.hub import App, Caller, Hub
from store import NotFound, Unavailable

from .base import (AGENT_COOKIE, AGENT_COOKIE_DAYS, RETRY_AFTER_S, ApiError, BaseHandler,
                   access_log_level, password_tag)
from .logs import RequestIdTransform, WithRequestId, request_id_for
from .services import SETTINGS_KEY, services_of

log = logging.getLogger("wolive.pusher")


class PusherSocket(transport.PusherSocketHandler):
    """`/app/{key}`: the engine's socket (`realtime.pusher.transport`), whose caller is the
    agent of the console that opened it (the agent cookie, from wolive's own origin only),
    or anonymous (a visitor's window, any other page)."""

    def check_origin(self, origin: str) -> bool:
        # Any site may open a socket (visitor windows are embedded everywhere); what a
        # socket may hear is decided per channel, and the agent cookie only counts from our
        # own origin (see caller), so a foreign page cannot borrow an agent's session.
        return True

    def _own_origin(self, origin: str) -> bool:
        """Whether a browser's `Origin` is one of wolive's own (the agent cookie counts only
        there; a page on another port of the same host is another origin, RFC 6454):
        the socket's own `scheme://host:port` as the browser addressed it (the `Host`
        header; behind a proxy, the public one), `server.public_url`, or, for WoLive's
        separate socket port (`legacy_ws_port`), the main port of the same host, whose
        pages open it."""
        try:
            o = urlsplit(origin)
            port = o.port or (443 if o.scheme == "https" else 80)
        except ValueError:
            return False
        if o.scheme not in ("http", "https") or not o.hostname:
            return False
        if o.netloc.lower() == self.request.host.lower():
            return True
        services = services_of(self.settings)
        public = urlsplit(services.config.server.public_url)
        if public.netloc and (o.scheme, o.netloc.lower()) == (public.scheme,
                                                               public.netloc.lower()):
            return True
        return o.hostname == self.request.host_name and port == services.ports.get("main")

    async def caller(self) -> Caller:
        """The agent whose signed cookie came with the handshake from wolive's own origin,
        else anonymous. Raises `CallerUnavailable` while the database is out of reach."""
        origin = self.request.headers.get("Origin", "")
        if origin and not self._own_origin(origin):
            return Caller()
        raw = self.get_signed_cookie(AGENT_COOKIE, max_age_days=AGENT_COOKIE_DAYS)
        if not raw:
            return Caller()
        try:
            sid_s, tag = raw.decode().split(":", 1)
            row = await services_of(self.settings).store.get_service(int(sid_s))
        except Unavailable as exc:  # the store logged it
            raise transport.CallerUnavailable(str(exc)) from exc
        except (ValueError, NotFound):  # bad cookie or unknown agent: an anonymous socket
            return Caller()
        if tag != password_tag(row["password"]):
            return Caller()
        return Caller(service_id=row["service_id"], business_id=row["business_id"])


def query_values(query: str) -> dict[str, str]:
    """A query string's values, URL-decoded, the last of a repeated name winning, nothing
    stripped: exactly what the client signed. `urllib.parse.parse_qsl(query,
    keep_blank_values=True)`'s answer, without its cost when nothing is escaped (the
    Pusher libraries' `auth_*` and `body_md5` values never are)."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    out = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[name] = value
    return out


class PusherApiHandler(BaseHandler):
    """Base of the HTTP API: signed requests only (docs/api.md, "Pusher", "HTTP API");
    JSON always, `{"error": ...}` on failure: 400 malformed, 401 signature, 403 disabled app,
    404 unknown app, 413 too large."""

    app: App

    def set_default_headers(self) -> None:
        # Server-to-server JSON, never framed: none of the pages' frame headers (the lean
        # publish path answers exactly as these handlers do).
        return None

    def check_xsrf_cookie(self) -> None:
        return None  # signed by the app secret instead

    def log_app(self) -> str | None:
        """The app's id once the request is authenticated, for the access log."""
        app = getattr(self, "app", None)
        return app.id if app is not None else None

    def find_app(self) -> App | None:
        """The app named by the path's first group (`/apps/{app_id}/...`)."""
        return self.hub.apps_by_id.get(self.path_args[0] if self.path_args else "")

    def query(self) -> dict[str, str]:
        """The query string, URL-decoded (what the signature is computed over)."""
        return query_values(self.request.query)

    async def prepare(self) -> None:
        try:
            self.app = pusher_api.authenticate(self.find_app(), self.request.method or "",
                                               self.request.path, self.query(),
                                               self.request.body)
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        msg = getattr(exc, "log_message", None) or self._reason
        if self._cluster_unavailable(exc):  # Redis out of reach: try again shortly
            self.set_status(503)
            self.set_header("Retry-After", str(RETRY_AFTER_S))
            msg = "service briefly unavailable, retry"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": msg}))

    def json_body(self) -> Any:
        """The body as JSON (400 when it is not)."""
        try:
            return pusher_api.parse_json(self.request.body)
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None

    async def reply(self, use_case: Callable[..., dict[str, Any] |
                                             Awaitable[dict[str, Any]]], *args: Any) -> None:
        """Answer `use_case(hub, app, *args)` (a dict, or a coroutine giving one) as JSON;
        its `ApiProblem` becomes the status."""
        try:
            answer = use_case(self.hub, self.app, *args)
            if inspect.isawaitable(answer):
                answer = await answer
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, ensure_ascii=False))


class EventsHandler(PusherApiHandler):
    """`POST /apps/{app_id}/events`: publish one event to 1-100 channels."""

    async def post(self, app_id: str) -> None:
        await self.reply(pusher_api.publish, self.json_body())


class BatchEventsHandler(PusherApiHandler):
    """`POST /apps/{app_id}/batch_events`: publish 1-10 events."""

    async def post(self, app_id: str) -> None:
        await self.reply(pusher_api.publish_batch, self.json_body())


class ChannelsHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels`: occupied channels."""

    async def get(self, app_id: str) -> None:
        await self.reply(pusher_api.channels, self.query())


class ChannelHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels/{name}`: one channel's state."""

    async def get(self, app_id: str, name: str) -> None:
        await self.reply(pusher_api.channel, name, self.query())


class UsersHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels/{name}/users`: a presence channel's users."""

    async def get(self, app_id: str, name: str) -> None:
        await self.reply(pusher_api.users, name)


class TerminateHandler(PusherApiHandler):
    """`POST /apps/{app_id}/users/{user_id}/terminate_connections` (the Node library)."""

    async def post(self, app_id: str, user_id: str) -> None:
        await self.reply(pusher_api.terminate, user_id)


class TerminateByKeyHandler(PusherApiHandler):
    """`POST /users/{user_id}/terminate_connections`: the Python library leaves out the
    `/apps/{id}` prefix, so the app is the one whose key signed the request."""

    def find_app(self) -> App | None:
        app = self.hub.apps_by_key.get(self.get_query_argument("auth_key", ""))
        if app is None:
            raise tornado.web.HTTPError(401, log_message="Unknown auth_key")
        return app

    async def post(self, user_id: str) -> None:
        await self.reply(pusher_api.terminate, user_id)


class ChannelAuthHandler(BaseHandler):
    """`POST /pusher/auth` (form `socket_id`, `channel_name`: pusher-js's default
    channelAuthorization request): signs only the channels `realtime.chat.channels.may_join` allows
    the logged-in agent. Needs the agent cookie and the `_xsrf` token (header
    `X-XSRFToken`), so another site cannot obtain signatures. 403 JSON otherwise."""

    def post(self) -> None:
        socket_id = self.arg("socket_id", required=True, max_len=64)
        channel = self.arg("channel_name", required=True, max_len=p.MAX_CHANNEL_NAME)
        if not pusher_api.SOCKET_ID_RE.match(socket_id):
            raise ApiError(400, 1, "socket_id must look like 123.456")
        if not p.valid_channel_name(channel):
            raise ApiError(400, 1, "invalid channel_name")
        member = may_join(self.current_user, channel)
        if member is None:
            raise ApiError(403, 1, "you may not join this channel / 无权订阅该频道")
        self.send_json(self.hub.authorize_channel(self.hub.default_app, socket_id, channel,
                                                  member or None))

    def send_json(self, answer: dict[str, str]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, ensure_ascii=False))


class UserAuthHandler(ChannelAuthHandler):
    """`POST /pusher/user-auth` (form `socket_id`: pusher-js's `signin()` request): a
    logged-in agent signs in as user `agent-{service_id}` with user_info {nick_name,
    avatar}. Cookie and `_xsrf` as for `/pusher/auth`; 403 JSON for anyone else."""

    def post(self) -> None:
        socket_id = self.arg("socket_id", required=True, max_len=64)
        if not pusher_api.SOCKET_ID_RE.match(socket_id):
            raise ApiError(400, 1, "socket_id must look like 123.456")
        agent = self.current_user
        if agent is None:
            raise ApiError(403, 1, "not logged in / 请先登录")
        user = {"id": f"agent-{agent.service_id}",
                "user_info": {"nick_name": agent.nick_name, "avatar": agent.avatar}}
        self.send_json(self.hub.authenticate_user(self.hub.default_app, socket_id, user))


# ---- the publish fast path -----------------------------------------------------------------

#: The endpoints `Application` answers without a RequestHandler: `POST` to these paths.
_LEAN_POST = re.compile(r"/apps/([0-9A-Za-z_\-]+)/(events|batch_events)")
_LEAN_USE_CASES: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "events": pusher_api.publish, "batch_events": pusher_api.publish_batch}
_access_log = logging.getLogger("tornado.access")
_SERVER = f"TornadoServer/{tornado.version}"


class _HttpDate:
    """The `Date` header as a RequestHandler writes it (`httputil.format_timestamp`),
    formatted once a second."""

    second = -1
    text = ""

    @classmethod
    def now(cls) -> str:
        t = int(time.time())
        if t != cls.second:
            cls.second, cls.text = t, tornado.httputil.format_timestamp(t)
        return cls.text


#: A Host header the lean path takes as it is: a host name or IPv4 / [IPv6] address and a
#: port. Anything else (missing, repeated, odd) goes through Tornado's routing, which
#: answers it 400 or serves it as usual.
_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
#: More query fields than a signed Pusher request has (6) by far: routed as usual (Tornado's
#: own limit then applies).
_LEAN_MAX_QUERY_FIELDS = 64
_general_log = logging.getLogger("tornado.general")


def _lean_eligible(start_line: tornado.httputil.RequestStartLine,
                   headers: tornado.httputil.HTTPHeaders) -> bool:
    """True when a POST to the publish endpoints is an ordinary one: HTTP/1.1, one plain
    Host, a JSON (or no) Content-Type, a short query. Only those take the lean path, so
    every unusual request gets exactly Tornado's answer."""
    if start_line.version != "HTTP/1.1":
        return False
    hosts = headers.get_list("Host")
    if len(hosts) != 1 or _PLAIN_HOST.fullmatch(hosts[0]) is None:
        return False
    ctype = headers.get("Content-Type", "")
    if ctype and ctype.split(";", 1)[0].strip().lower() != "application/json":
        return False
    return start_line.path.count("&") < _LEAN_MAX_QUERY_FIELDS


class _HeadersOnly:
    """What Tornado's output transforms (gzip, `RequestIdTransform`) read of a request."""

    __slots__ = ("headers", "request_id")

    def __init__(self, headers: tornado.httputil.HTTPHeaders, request_id: str) -> None:
        self.headers = headers
        self.request_id = request_id


class _LeanPublish(tornado.httputil.HTTPMessageDelegate):
    """One `POST /apps/{id}/events` or `/batch_events`, answered straight on the HTTP/1.1
    connection: the same checks and use cases as `EventsHandler` / `BatchEventsHandler`
    (`pusher_api.authenticate`, `parse_json`, `publish`), the same headers, gzip and log
    lines, without a RequestHandler, its routing, cookies and Futures: a third of the
    request's CPU, which 100 deliveries of the event share (docs/performance.md)."""

    __slots__ = ("app", "conn", "start_line", "headers", "app_id", "use_case", "route",
                 "chunks", "size", "t0")

    def __init__(self, app: Application, conn: tornado.httputil.HTTPConnection,
                 start_line: tornado.httputil.RequestStartLine,
                 headers: tornado.httputil.HTTPHeaders, app_id: str,
                 use_case: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
                 route: str) -> None:
        self.app, self.conn, self.start_line, self.headers = app, conn, start_line, headers
        self.app_id, self.use_case, self.route = app_id, use_case, route
        self.chunks: list[bytes] = []
        self.size = 0
        self.t0 = time.monotonic()

    def data_received(self, chunk: bytes) -> None:
        # Kept until the body is known to be too big (413): never more than a chunk past it.
        if self.size <= pusher_api.MAX_BODY_BYTES:
            self.chunks.append(chunk)
        self.size += len(chunk)

    def finish(self) -> asyncio.Task[None] | None:  # type: ignore[override]
        """Answer now (an inline adapter), or return the task that answers once the other
        nodes have the event; the connection reads no further request until then (Tornado's
        waits for the answer's `finish`, `_PublishConnection` for the task)."""
        body = b"".join(self.chunks)
        self.chunks = []
        hub = services_of(self.app.settings).hub
        if hub.adapter.inline:
            # Answered in the caller's stack: over an inline adapter the use case never
            # suspends.
            try:
                answer = run_inline(self._run(hub, body))
            except Exception as exc:
                self._refuse(hub, exc)
            else:
                self._respond(200, json.dumps(answer, ensure_ascii=False).encode(), "")
            return None
        return asyncio.ensure_future(self._finish_when_sent(hub, body))

    async def _finish_when_sent(self, hub: Hub, body: bytes) -> None:
        """With several nodes: answered once the other nodes have the event (the use case
        waits for `Adapter.flushed`), or 503 when they cannot be told."""
        try:
            answer = await self._run(hub, body)
        except Exception as exc:
            self._refuse(hub, exc)
        else:
            self._respond(200, json.dumps(answer, ensure_ascii=False).encode(), "")

    def _run(self, hub: Hub, body: bytes) -> Coroutine[Any, Any, dict[str, Any]]:
        """The use case's coroutine for this request. Raises `ApiProblem` (a bad signature,
        app or body)."""
        path, _, query = self.start_line.path.partition("?")
        app = pusher_api.authenticate(hub.apps_by_id.get(self.app_id), "POST", path,
                                      query_values(query), body)
        return self.use_case(hub, app, pusher_api.parse_json(body))

    def _refuse(self, hub: Hub, exc: Exception) -> None:
        """Answer `exc` as `PusherApiHandler` does: an `ApiProblem` with its status, the
        adapter's store out of reach 503 with `Retry-After`, anything else 500."""
        headers: dict[str, str] = {}
        if isinstance(exc, pusher_api.ApiProblem):
            status, problem = exc.status, exc.message
        elif isinstance(exc, hub.adapter.unavailable_errors):
            log.warning("HTTP API publish: the cluster store is unavailable (%s)", exc)
            status, problem = 503, "service briefly unavailable, retry"
            headers["Retry-After"] = str(RETRY_AFTER_S)
        else:
            log.error("HTTP API publish failed: %s", self.start_line.path, exc_info=exc)
            status, problem = 500, ""
        answer = {"error": problem or "Internal Server Error"}
        self._respond(status, json.dumps(answer, ensure_ascii=False).encode(), problem,
                      headers)

    def _respond(self, status: int, body: bytes, problem: str,
                 more: dict[str, str] | None = None) -> None:
        headers = tornado.httputil.HTTPHeaders({
            "Server": _SERVER, "Content-Type": "application/json",
            "Date": _HttpDate.now(), "Content-Length": str(len(body)), **(more or {})})
        rid = request_id_for(self.headers)
        for transform in self.app.transforms:  # gzip, when `compress_response` is on
            status, headers, body = transform(
                cast(tornado.httputil.HTTPServerRequest, _HeadersOnly(self.headers, rid))
            ).transform_first_chunk(status, headers, body, True)
        self.conn.write_headers(tornado.httputil.ResponseStartLine(
            "HTTP/1.1", status, tornado.httputil.responses.get(status, "Unknown")),
            headers, body)
        self.conn.finish()
        seconds = time.monotonic() - self.t0
        metrics = self.app.metrics
        if metrics is not None:
            metrics.observe_http(self.route, "POST", status, seconds)
        # The log lines a RequestHandler writes: the refusal's reason, then the access log
        # as `wolive.log_request` writes it (2xx at DEBUG).
        level = access_log_level(status)
        if problem or _access_log.isEnabledFor(level):
            ip = getattr(getattr(self.conn, "context", None), "remote_ip", "?")
            summary = f"POST {self.start_line.path} ({ip})"
            fields = {"request_id": rid, "method": "POST", "route": self.route,
                      "status": status, "latency_ms": round(1000.0 * seconds, 3),
                      "remote_ip": ip, "app": self.app_id}
            if problem:
                _general_log.warning("%d %s: %s", status, summary, problem, extra=fields)
            _access_log.log(level, "%d %s %.2fms", status, summary, 1000.0 * seconds,
                            extra=fields)

    def on_connection_close(self) -> None:
        self.chunks = []


class _Dispatch(tornado.httputil.HTTPMessageDelegate):
    """Picks, from the request line and headers, the lean publish path or Tornado's
    routing."""

    __slots__ = ("app", "server_conn", "request_conn", "delegate")

    def __init__(self, app: Application, server_conn: object,
                 request_conn: tornado.httputil.HTTPConnection) -> None:
        self.app, self.server_conn, self.request_conn = app, server_conn, request_conn
        self.delegate: tornado.httputil.HTTPMessageDelegate | None = None

    def headers_received(self, start_line: tornado.httputil.RequestStartLine |
                         tornado.httputil.ResponseStartLine,
                         headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        if isinstance(start_line, tornado.httputil.RequestStartLine):
            self.delegate = self.app.lean_delegate(self.request_conn, start_line, headers)
            if self.delegate is not None:
                return None
        self.delegate = tornado.web.Application.start_request(
            self.app, self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


class _Labelled(tornado.routing.Matcher):
    """A route's matcher that also notes the route's pattern on the request it matches
    (`request.wolive_route`, the metrics' and access log's `route`: bounded, never the raw
    path)."""

    def __init__(self, inner: tornado.routing.Matcher, label: str) -> None:
        self.inner, self.label = inner, label

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        params = self.inner.match(request)
        if params is not None:
            request.wolive_route = self.label  # type: ignore[attr-defined]
        return params

    def reverse(self, *args: Any) -> str | None:
        return self.inner.reverse(*args)


def route_label(matcher: tornado.routing.Matcher) -> str:
    """A route's label: its path pattern as written in the route table."""
    regex = getattr(matcher, "regex", None)
    pattern = regex.pattern if regex is not None else type(matcher).__name__
    return pattern[:-1] if pattern.endswith("$") else pattern


class Application(tornado.web.Application):
    """`tornado.web.Application` whose listeners answer `POST /apps/{id}/events` and
    `/batch_events` through `_LeanPublish` when its routes include `EventsHandler` (the main
    port and WoLive's 2080); every other request, and every other method on those paths
    (CORS preflight, 405), goes through the routes as usual.

    Every request gets an id (`handlers.logs`: `request.request_id`, `X-Request-Id` on the
    answer, `REQUEST_ID` while its handler runs) and its route's pattern
    (`request.wolive_route`)."""

    def __init__(self, handlers: list[Any], **settings: Any) -> None:
        super().__init__(handlers, **settings)
        self.lean_publish = any(spec[1] is EventsHandler for spec in handlers)
        self.add_transform(RequestIdTransform)
        for rule in self.wildcard_router.rules:
            rule.matcher = _Labelled(rule.matcher, route_label(rule.matcher))
        #: `realtime.metrics.Metrics` when `metrics.enabled`, else None.
        services = settings.get(SETTINGS_KEY)
        self.metrics = services.metrics if services is not None else None

    def get_handler_delegate(self, request: tornado.httputil.HTTPServerRequest,
                             target_class: type[tornado.web.RequestHandler],
                             target_kwargs: dict[str, Any] | None = None,
                             path_args: list[bytes] | None = None,
                             path_kwargs: dict[str, bytes] | None = None
                             ) -> tornado.web._HandlerDelegate:
        rid = request_id_for(request.headers)
        request.request_id = rid  # type: ignore[attr-defined]
        inner = super().get_handler_delegate(request, target_class, target_kwargs,
                                             path_args, path_kwargs)
        return cast(tornado.web._HandlerDelegate, WithRequestId(inner, rid))

    def start_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        if not self.lean_publish:
            return super().start_request(server_conn, request_conn)
        return _Dispatch(self, server_conn, request_conn)

    def lean_delegate(self, request_conn: tornado.httputil.HTTPConnection,
                      start_line: tornado.httputil.RequestStartLine,
                      headers: tornado.httputil.HTTPHeaders
                      ) -> tornado.httputil.HTTPMessageDelegate | None:
        """The `_LeanPublish` that answers this request, when it is an ordinary `POST` to
        the publish endpoints (`_lean_eligible`) and this application serves them; None:
        route it as usual. Used by `_Dispatch` and by `handlers.http_server`'s reader."""
        if not self.lean_publish or start_line.method != "POST":
            return None
        m = _LEAN_POST.fullmatch(start_line.path.partition("?")[0])
        if m is None or not _lean_eligible(start_line, headers):
            return None
        return _LeanPublish(self, request_conn, start_line, headers, m[1],
                            _LEAN_USE_CASES[m[2]], _LEAN_ROUTES[m[2]])


_APP = r"/apps/([0-9A-Za-z_\-]+)"
#: The lean path's route labels: the patterns of `EventsHandler` / `BatchEventsHandler`.
_LEAN_ROUTES = {"events": _APP + r"/events", "batch_events": _APP + r"/batch_events"}


def routes() -> list[tuple[str, type]]:
    """The WebSocket, the HTTP API and the console's auth endpoints."""
    return [
        (r"/app/([^/]+)", PusherSocket),
        (_APP + r"/events", EventsHandler),
        (_APP + r"/batch_events", BatchEventsHandler),
        (_APP + r"/channels", ChannelsHandler),
        (_APP + r"/channels/([^/]+)", ChannelHandler),
        (_APP + r"/channels/([^/]+)/users", UsersHandler),
        (_APP + r"/users/([^/]+)/terminate_connections", TerminateHandler),
        (r"/users/([^/]+)/terminate_connections", TerminateByKeyHandler),
        (r"/pusher/auth", ChannelAuthHandler),
        (r"/pusher/user-auth", UserAuthHandler),
    ]
