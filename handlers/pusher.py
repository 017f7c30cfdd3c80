"""The Pusher endpoints: the WebSocket `/app/{key}` and the HTTP API `/apps/{app_id}/...`.

Thin glue: protocol logic lives in `realtime.hub`, signatures in `realtime.signing`.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Optional, cast
from urllib.parse import urlsplit

import tornado.web
import tornado.websocket

from realtime import protocol as p
from realtime.hub import App, Caller, Hub, Session
from realtime.signing import SignatureProblem, verify_api_request

from .base import AGENT_COOKIE, AGENT_COOKIE_DAYS, BaseHandler, password_tag

log = logging.getLogger("wolive.pusher")

#: Channels one HTTP publish may name (Pusher REST API limit).
MAX_CHANNELS_PER_PUBLISH = 100


class _WSConnection:
    """`realtime.adapter.Connection` over a Tornado WebSocket."""

    __slots__ = ("socket_id", "handler", "open")

    def __init__(self, socket_id: str, handler: "PusherSocket") -> None:
        self.socket_id = socket_id
        self.handler = handler
        self.open = True

    def send(self, frame: str) -> bool:
        if not self.open:
            return False
        try:
            self.handler.write_message(frame)
        except tornado.websocket.WebSocketClosedError:
            self.open = False
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            self.handler.close(code, reason)


class PusherSocket(tornado.websocket.WebSocketHandler):
    """`/app/{key}`: one Pusher connection (protocol 7)."""

    session: Optional[Session] = None

    @property
    def hub(self) -> Hub:
        return cast(Hub, self.settings["wolive_hub"])

    def check_origin(self, origin: str) -> bool:
        # Any site may open a socket (visitor windows are embedded everywhere); what a
        # socket may hear is decided per channel, and the agent cookie only counts from our
        # own origin (see _caller), so a foreign page cannot borrow an agent's session.
        return True

    async def _caller(self) -> Caller:
        origin = self.request.headers.get("Origin", "")
        # Same host name, any of our ports (WoLive's 9090 socket serves pages on 80/443).
        if origin and urlsplit(origin).hostname != self.request.host_name:
            return Caller()
        raw = self.get_signed_cookie(AGENT_COOKIE, max_age_days=AGENT_COOKIE_DAYS)
        if not raw:
            return Caller()
        try:
            sid_s, tag = raw.decode().split(":", 1)
            row = await self.settings["wolive_store"].get_service(int(sid_s))
        except Exception:  # bad cookie or unknown agent: an anonymous socket
            return Caller()
        if tag != password_tag(row["password"]):
            return Caller()
        return Caller(service_id=row["service_id"], business_id=row["business_id"])

    async def open(self, key: str) -> None:  # type: ignore[override]
        hub = self.hub
        conn = _WSConnection(hub.next_socket_id(), self)
        app = hub.apps_by_key.get(key)
        error = None
        if hub.closing:
            error = p.Errors.SERVER_SHUTDOWN
        elif app is None:
            error = p.Errors.APP_NOT_FOUND
        elif not app.enabled:
            error = p.Errors.APP_DISABLED
        else:
            try:
                proto = int(self.get_query_argument("protocol", "7"))
            except ValueError:
                proto = 0
            if proto not in p.PROTOCOLS:
                error = p.Errors.BAD_PROTOCOL
        if error is not None:
            conn.send(p.error_frame(error.code, error.message))
            conn.close(error.code, error.message)
            return
        caller = await self._caller()
        if not conn.open:  # closed while we looked the agent up
            return
        self.session = Session(hub=hub, app=cast(App, app), conn=conn, caller=caller)
        self.session.start()

    def on_message(self, message: str | bytes) -> None:
        if self.session is not None:
            self.session.on_frame(message)

    def on_close(self) -> None:
        if self.session is not None:
            self.session.conn.open = False  # type: ignore[attr-defined]
            self.session.on_close()


class PusherApiHandler(BaseHandler):
    """Base of the HTTP API: signed requests only (PUSHER-COMPAT, "HTTP API"); JSON always."""

    app: App

    def check_xsrf_cookie(self) -> None:
        return None  # signed by the app secret instead

    async def prepare(self) -> None:
        app_id = self.path_args[0] if self.path_args else ""
        app = self.hub.apps_by_id.get(app_id)
        if app is None:
            raise tornado.web.HTTPError(404, log_message=f"unknown app {app_id}")
        if not app.enabled:
            raise tornado.web.HTTPError(403, log_message="app disabled")
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        try:
            verify_api_request(self.request.method or "", self.request.path, params,
                               self.request.body, app.key, app.secret)
        except SignatureProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.reason) from None
        self.app = app

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        msg = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": msg}))

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, log_message="body is not JSON") from None
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, log_message="body must be a JSON object")
        return body


class EventsHandler(PusherApiHandler):
    """`POST /apps/{app_id}/events`: publish one event to one or more channels."""

    def post(self, app_id: str) -> None:
        body = self.json_body()
        name, data = body.get("name"), body.get("data")
        if not isinstance(name, str) or not name or len(name) > 200:
            raise tornado.web.HTTPError(400, log_message="name must be a string of 1-200")
        if not isinstance(data, str):
            raise tornado.web.HTTPError(400, log_message="data must be a string")
        if len(data.encode()) > p.MAX_EVENT_DATA_BYTES:
            raise tornado.web.HTTPError(413, log_message="data is over 10 KB")
        channels = body.get("channels")
        if channels is None and "channel" in body:
            channels = [body["channel"]]
        if not isinstance(channels, list) or not channels:
            raise tornado.web.HTTPError(400, log_message="channel or channels is required")
        if len(channels) > MAX_CHANNELS_PER_PUBLISH:
            raise tornado.web.HTTPError(400, log_message="at most 100 channels")
        if not all(p.valid_channel_name(c) for c in channels):
            raise tornado.web.HTTPError(400, log_message="invalid channel name")
        socket_id = body.get("socket_id")
        if socket_id is not None and not isinstance(socket_id, str):
            raise tornado.web.HTTPError(400, log_message="socket_id must be a string")
        for channel in channels:
            self.hub.trigger(channel, name, data, app=self.app, except_socket_id=socket_id)
        self.set_header("Content-Type", "application/json")
        self.finish("{}")


def routes() -> list[tuple[str, type]]:
    return [
        (r"/app/([^/]+)", PusherSocket),
        (r"/apps/([0-9A-Za-z_\-]+)/events", EventsHandler),
    ]
