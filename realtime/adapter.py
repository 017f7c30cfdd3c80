"""The channel registry and fan-out, behind an interface (ARCHITECTURE.md, "adapter").

`LocalAdapter` keeps everything in this process. A Redis implementation can later carry
fan-out and occupancy across nodes behind the same methods, without touching handlers.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Callable, Iterable, Optional, Protocol

log = logging.getLogger("wolive.realtime")


class Connection(Protocol):
    """What the realtime layer needs of a socket; the WebSocket handler provides it."""

    socket_id: str

    def send(self, frame: str) -> bool:
        """Queue one text frame; False when the socket is already closed."""

    def close(self, code: int, reason: str) -> None:
        """Close with a Pusher close code."""


OccupancyListener = Callable[[str, str, bool], None]
"""Called as listener(app_id, channel, occupied) when a channel gains its first subscriber
(True) or loses its last one (False)."""


class Adapter(ABC):
    """Channel membership and delivery for every app on this server."""

    def __init__(self) -> None:
        self._listeners: list[OccupancyListener] = []

    def add_occupancy_listener(self, listener: OccupancyListener) -> None:
        self._listeners.append(listener)

    def _emit(self, app_id: str, channel: str, occupied: bool) -> None:
        for listener in self._listeners:
            try:
                listener(app_id, channel, occupied)
            except Exception:  # a broken listener must not break subscribing
                log.exception("occupancy listener failed for %s", channel)

    @abstractmethod
    def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        """Add `conn` to `channel`; True when it was not subscribed before."""

    @abstractmethod
    def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        """Remove `conn` from `channel`; True when it was subscribed."""

    @abstractmethod
    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: Optional[str] = None) -> int:
        """Send an encoded frame to every subscriber but `except_socket_id`; returns how many
        sockets took it. A closed socket is dropped and delivery goes on."""

    @abstractmethod
    def subscription_count(self, app_id: str, channel: str) -> int:
        """Sockets subscribed to `channel`."""

    @abstractmethod
    def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        """Occupied channels of the app whose name starts with `prefix`, with socket counts."""

    @abstractmethod
    def subscribers(self, app_id: str, channel: str) -> Iterable[Connection]:
        """The sockets subscribed to `channel` on this node."""


class LocalAdapter(Adapter):
    """In-process registry: one dict per app, channel → {socket_id: connection}."""

    def __init__(self) -> None:
        super().__init__()
        self._apps: dict[str, dict[str, dict[str, Connection]]] = {}

    def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        chans = self._apps.setdefault(app_id, {})
        members = chans.get(channel)
        if members is None:
            members = chans[channel] = {}
        if conn.socket_id in members:
            return False
        members[conn.socket_id] = conn
        if len(members) == 1:
            self._emit(app_id, channel, True)
        return True

    def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        chans = self._apps.get(app_id, {})
        members = chans.get(channel)
        if not members or members.pop(conn.socket_id, None) is None:
            return False
        if not members:
            del chans[channel]
            self._emit(app_id, channel, False)
        return True

    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: Optional[str] = None) -> int:
        members = self._apps.get(app_id, {}).get(channel)
        if not members:
            return 0
        sent = 0
        for socket_id, conn in list(members.items()):
            if socket_id == except_socket_id:
                continue
            if conn.send(frame):
                sent += 1
        return sent

    def subscription_count(self, app_id: str, channel: str) -> int:
        return len(self._apps.get(app_id, {}).get(channel, ()))

    def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        return {name: len(members) for name, members in self._apps.get(app_id, {}).items()
                if name.startswith(prefix)}

    def subscribers(self, app_id: str, channel: str) -> Iterable[Connection]:
        return list(self._apps.get(app_id, {}).get(channel, {}).values())
