"""The Pusher hub: apps, live sessions, the protocol state machine of one socket.

The WebSocket handler is thin (handlers/pusher_ws.py): it hands each text frame to
`Session.on_frame` and calls `Session.on_close`; everything the protocol says lives here.
"""
from __future__ import annotations

import itertools
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import protocol as p
from .adapter import Adapter, Connection, LocalAdapter
from .signing import channel_auth, same

log = logging.getLogger("wolive.realtime")


@dataclass(frozen=True)
class App:
    """One Pusher app: `id` (numeric string for the Python library), `key`, `secret`."""

    id: str
    key: str
    secret: str
    enabled: bool = True


@dataclass
class Caller:
    """Who holds a socket, as far as the server knows: a logged-in agent or nobody."""

    service_id: Optional[int] = None
    business_id: Optional[str] = None


ChannelPolicy = Callable[["Session", str], Optional[str]]
"""policy(session, channel) → None to allow a public channel, or the reason to refuse."""

HubListener = Callable[[App, dict[str, Any]], None]
"""listener(app, event): told of every webhook-worthy happening, as a Pusher webhook event
dict: {"name": "channel_occupied" | "channel_vacated" | "member_added" | "member_removed" |
"client_event" | "cache_miss" | "subscription_count", "channel": ..., ...} (Pusher webhook
docs for the other fields). Called synchronously on the socket's path: never block."""


class Hub:
    """Every app and socket of this process. Build once per server (wolive.make_app)."""

    def __init__(self, apps: list[App], adapter: Optional[Adapter] = None,
                 policy: Optional[ChannelPolicy] = None) -> None:
        self.apps_by_key = {a.key: a for a in apps}
        self.apps_by_id = {a.id: a for a in apps}
        self.default_app = apps[0]
        self.adapter = adapter or LocalAdapter()
        self.policy = policy
        self.sessions: dict[str, Session] = {}
        self._listeners: list[HubListener] = []
        self.adapter.add_occupancy_listener(self._on_occupancy)
        self.closing = False
        # socket_id = "<process random>.<counter>": matches ^\d+\.\d+$ and never repeats
        # within a process; the random part keeps ids of two processes apart.
        self._node = random.randint(1, 2**31 - 1)
        self._counter = itertools.count(random.randint(1, 1000))

    # ---- listeners (webhooks and the like) ----------------------------------------------

    def add_listener(self, listener: HubListener) -> None:
        self._listeners.append(listener)

    def emit(self, app: App, event: dict[str, Any]) -> None:
        """Tell every listener; a failing listener is logged and never stops the others."""
        for listener in self._listeners:
            try:
                listener(app, event)
            except Exception:
                log.exception("hub listener failed on %s", event.get("name"))

    def _on_occupancy(self, app_id: str, channel: str, occupied: bool) -> None:
        app = self.apps_by_id.get(app_id)
        if app is not None:
            self.emit(app, {"name": "channel_occupied" if occupied else "channel_vacated",
                            "channel": channel})

    def next_socket_id(self) -> str:
        return f"{self._node}.{next(self._counter)}"

    # ---- server-side pushes -------------------------------------------------------------

    def trigger(self, channel: str, event: str, data: Any, app: Optional[App] = None,
                except_socket_id: Optional[str] = None) -> int:
        """Publish `event` with `data` (a JSON string, or anything JSON-encodable) on
        `channel`; returns the sockets reached on this node."""
        app = app or self.default_app
        frame = p.encode(event, data, channel=channel)
        return self.adapter.publish(app.id, channel, frame, except_socket_id)

    def occupied(self, channel: str, app: Optional[App] = None) -> bool:
        return self.adapter.subscription_count((app or self.default_app).id, channel) > 0

    # ---- life ---------------------------------------------------------------------------

    def sweep(self, now: Optional[float] = None) -> int:
        """Close sockets silent for longer than activity_timeout + grace with 4201."""
        now = now if now is not None else time.monotonic()
        limit = p.ACTIVITY_TIMEOUT_S + p.DEAD_SOCKET_GRACE_S
        dead = [s for s in self.sessions.values() if now - s.last_seen > limit]
        for s in dead:
            s.fail(p.Errors.PONG_NOT_RECEIVED)
        return len(dead)

    def shutdown(self) -> None:
        """Refuse new sockets and close open ones with 4200 so clients reconnect at once."""
        self.closing = True
        for s in list(self.sessions.values()):
            s.fail(p.Errors.SERVER_SHUTDOWN)


@dataclass
class Session:
    """The protocol state of one socket (Pusher protocol 7)."""

    hub: Hub
    app: App
    conn: Connection
    caller: Caller = field(default_factory=Caller)
    channels: set[str] = field(default_factory=set)
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False

    @property
    def socket_id(self) -> str:
        return self.conn.socket_id

    def start(self) -> None:
        self.hub.sessions[self.socket_id] = self
        self.conn.send(p.encode("pusher:connection_established", {
            "socket_id": self.socket_id, "activity_timeout": p.ACTIVITY_TIMEOUT_S}))

    def fail(self, error: p.ErrorCode, message: Optional[str] = None) -> None:
        """Send `pusher:error`; a fatal error then closes the socket with the same code."""
        self.conn.send(p.error_frame(error.code, message or error.message))
        if error.fatal:
            self.conn.close(error.code, (message or error.message)[:120])
            self.on_close()

    def on_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub.sessions.pop(self.socket_id, None)
        for channel in list(self.channels):
            self.hub.adapter.unsubscribe(self.app.id, channel, self.conn)
        self.channels.clear()

    def on_frame(self, text: Any) -> None:
        """Handle one client frame; a malformed one gets `pusher:error`, never a close."""
        self.last_seen = time.monotonic()
        try:
            frame = p.decode(text)
            event = frame["event"]
            if event == "pusher:ping":
                self.conn.send(p.encode("pusher:pong", {}))
            elif event == "pusher:pong":
                pass
            elif event == "pusher:subscribe":
                self._subscribe(frame.get("data"))
            elif event == "pusher:unsubscribe":
                self._unsubscribe(frame.get("data"))
            else:
                raise p.ProtocolError(p.Errors.GENERIC, f"Unsupported event {event[:64]!r}")
        except p.ProtocolError as exc:
            self.fail(exc.error, exc.message)

    # ---- subscriptions ------------------------------------------------------------------

    def _channel_of(self, data: Any) -> str:
        if not isinstance(data, dict):
            raise p.ProtocolError(p.Errors.GENERIC, "data must be an object")
        channel = data.get("channel")
        if not p.valid_channel_name(channel):
            raise p.ProtocolError(p.Errors.GENERIC, "Invalid channel name")
        return str(channel)

    def _deny(self, channel: str, reason: str, status: int = 403) -> None:
        self.conn.send(p.encode("pusher:subscription_error",
                                {"type": "AuthError", "error": reason, "status": status},
                                channel=channel))

    def _subscribe(self, data: Any) -> None:
        channel = self._channel_of(data)
        kind = p.channel_kind(channel)
        if kind in ("private", "private-encrypted"):
            auth = data.get("auth")
            expected = channel_auth(self.app.key, self.app.secret, self.socket_id, channel)
            if not isinstance(auth, str) or not same(auth, expected):
                return self._deny(channel, "Invalid signature", 401)
        elif kind == "public":
            reason = self.hub.policy(self, channel) if self.hub.policy else None
            if reason:
                return self._deny(channel, reason)
        else:
            return self._deny(channel, f"{kind} channels are not supported yet", 400)
        self.channels.add(channel)
        self.hub.adapter.subscribe(self.app.id, channel, self.conn)
        self.conn.send(p.encode("pusher_internal:subscription_succeeded", {},
                                channel=channel))

    def _unsubscribe(self, data: Any) -> None:
        channel = self._channel_of(data)
        if channel in self.channels:
            self.channels.discard(channel)
            self.hub.adapter.unsubscribe(self.app.id, channel, self.conn)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
