"""The Pusher HTTP API's use cases: check a request body or query, act on the hub, shape the
answer. The handlers (handlers/pusher.py) only verify the signature, parse JSON and write.

Source: Pusher Channels HTTP API reference ("Events", "Channels", "Users") and what the
official server libraries send. Every refusal is an `ApiProblem` carrying the HTTP status:
400 malformed, 413 event data over 10 KB, 503 a publish while the server shuts down. Answers
are plain dicts, written as JSON.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import inputs
from . import protocol as p
from .hub import App, Hub
from .signing import SignatureProblem, verify_api_request

SOCKET_ID_RE = re.compile(r"^\d+\.\d+$")
#: Largest HTTP API body (bytes): a full batch (10 events of 10 KB, every character
#: JSON-escaped) fits; anything bigger is refused with 413 before it is parsed.
MAX_BODY_BYTES = 256 * 1024
#: `info` attributes the API reports (Pusher REST API): distinct users of a presence
#: channel, sockets of any channel. Unknown attributes are ignored, as Pusher does.
USER_COUNT = "user_count"
SUBSCRIPTION_COUNT = "subscription_count"


class ApiProblem(Exception):
    """A refused HTTP API request: answer `status` with {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authenticate(app: App | None, method: str, path: str, query: Mapping[str, str],
                 body: bytes) -> App:
    """The app a request may act on: `app` is the one its path (or `auth_key`) names, `query`
    the URL-decoded query values the signature covers. Raises `ApiProblem`: 404 unknown app,
    403 disabled app, 413 body over `MAX_BODY_BYTES`, 401 a bad signature (`signing`)."""
    if app is None:
        raise ApiProblem(404, "unknown app")
    if not app.enabled:
        raise ApiProblem(403, "app disabled")
    if len(body) > MAX_BODY_BYTES:
        raise ApiProblem(413, f"body is over {MAX_BODY_BYTES // 1024} KB")
    try:
        verify_api_request(method, path, query, body, app.key, app.secret)
    except SignatureProblem as exc:
        raise ApiProblem(exc.status, exc.reason) from None
    return app


def parse_json(body: bytes) -> Any:
    """A request body as JSON; an empty body is {}. Raises `ApiProblem` 400."""
    try:
        return inputs.loads(body or b"{}")
    except inputs.InputError as exc:
        raise ApiProblem(400, f"body is not usable JSON: {exc}") from None


@dataclass(frozen=True)
class Publish:
    """One event to publish: `data` is the string sent on as is (encrypted payloads
    included); `socket_id` is excluded from delivery; `info` the attributes asked for."""

    name: str
    data: str
    channels: tuple[str, ...]
    socket_id: str | None
    info: frozenset[str]


def parse_info(raw: Any) -> frozenset[str]:
    """`info` = "user_count,subscription_count" (comma-separated). Raises `ApiProblem`."""
    if raw is None or raw == "":
        return frozenset()
    if not isinstance(raw, str):
        raise ApiProblem(400, "info must be a comma-separated string")
    return frozenset(a.strip() for a in raw.split(",") if a.strip())


def parse_publish(body: Any, in_batch: bool = False) -> Publish:
    """Check one event of `POST /events` (`channel` or `channels`) or of a batch (`channel`).
    Raises `ApiProblem`: 400 malformed, 413 data over 10 KB."""
    where = "each batch event" if in_batch else "the body"
    if not isinstance(body, dict):
        raise ApiProblem(400, f"{where} must be a JSON object")
    name, data = body.get("name"), body.get("data")
    if not isinstance(name, str) or not 0 < len(name) <= p.MAX_EVENT_NAME:
        raise ApiProblem(400, "name must be a string of 1-200 characters")
    if not isinstance(data, str):
        raise ApiProblem(400, "data must be a string (JSON-encode objects first)")
    if p.json_size(data) > p.MAX_EVENT_DATA_BYTES:
        raise ApiProblem(413, f"data is over {p.MAX_EVENT_DATA_BYTES // 1024} KB")
    channels = body.get("channels")
    if channels is None and "channel" in body:
        channels = [body["channel"]]
    if in_batch and (not isinstance(body.get("channel"), str) or "channels" in body):
        raise ApiProblem(400, "each batch event needs one channel")
    if not isinstance(channels, list) or not channels:
        raise ApiProblem(400, "channel or channels is required")
    if len(channels) > p.MAX_CHANNELS_PER_PUBLISH:
        raise ApiProblem(400, f"at most {p.MAX_CHANNELS_PER_PUBLISH} channels")
    if not all(p.valid_channel_name(c) for c in channels):
        raise ApiProblem(400, "invalid channel name")
    socket_id = body.get("socket_id")
    if socket_id is not None and (not isinstance(socket_id, str)
                                  or not SOCKET_ID_RE.match(socket_id)):
        raise ApiProblem(400, "socket_id must look like 123.456")
    return Publish(name, data, tuple(channels), socket_id, parse_info(body.get("info")))


async def attributes(hub: Hub, app: App, channel: str,
                     info: frozenset[str]) -> dict[str, int]:
    """The `info` attributes of one channel: user_count only for presence channels."""
    counts = await hub.counts(app, channel)
    out: dict[str, int] = {}
    if USER_COUNT in info and counts.user_count is not None:
        out[USER_COUNT] = counts.user_count
    if SUBSCRIPTION_COUNT in info:
        out[SUBSCRIPTION_COUNT] = counts.subscription_count
    return out


def _publish(hub: Hub, app: App, event: Publish) -> None:
    for channel in event.channels:
        hub.trigger(channel, event.name, event.data, app=app,
                    except_socket_id=event.socket_id)


def _not_closing(hub: Hub) -> None:
    """A server that is shutting down has closed its sockets: a publish would reach nobody,
    so it is refused (503) for the publisher to send again, to this server once it is back
    or to another."""
    if hub.closing:
        raise ApiProblem(503, "server is shutting down; publish again")


async def publish(hub: Hub, app: App, body: Any) -> dict[str, Any]:
    """`POST /apps/{id}/events`: {} or, with `info`, {"channels": {name: attributes}}.
    Raises `ApiProblem` (400, 413, 503 while shutting down) and the adapter's
    `unavailable_errors` when the event could not be handed to the other nodes (the caller
    answers 503: an answered publish has reached every node). The event is published
    before the first await."""
    _not_closing(hub)
    event = parse_publish(body)
    mark = hub.adapter.sent_mark()
    _publish(hub, app, event)
    await hub.adapter.flushed(mark)
    if not event.info:
        return {}
    return {"channels": {c: await attributes(hub, app, c, event.info)
                         for c in event.channels}}


async def publish_batch(hub: Hub, app: App, body: Any) -> dict[str, Any]:
    """`POST /apps/{id}/batch_events` {"batch": [event, ...]} (1-10 events, each checked
    before any is sent): {"batch": [attributes or {} per event]}."""
    _not_closing(hub)
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        raise ApiProblem(400, "batch must be a non-empty list of events")
    if len(batch) > p.MAX_BATCH_EVENTS:
        raise ApiProblem(400, f"at most {p.MAX_BATCH_EVENTS} events per batch")
    events = [parse_publish(e, in_batch=True) for e in batch]
    mark = hub.adapter.sent_mark()
    for event in events:
        _publish(hub, app, event)
    await hub.adapter.flushed(mark)
    return {"batch": [await attributes(hub, app, e.channels[0], e.info) if e.info else {}
                      for e in events]}


async def channels(hub: Hub, app: App, query: Mapping[str, str]) -> dict[str, Any]:
    """`GET /apps/{id}/channels?filter_by_prefix=&info=`: {"channels": {name: attributes}}
    for occupied channels. `user_count` needs `filter_by_prefix` to start with presence-
    (else 400, as Pusher answers)."""
    prefix = query.get("filter_by_prefix", "")
    info = parse_info(query.get("info"))
    if USER_COUNT in info and not prefix.startswith("presence-"):
        raise ApiProblem(400, "info=user_count needs filter_by_prefix=presence-")
    return {"channels": {name: await attributes(hub, app, name, info)
                         for name in await hub.occupied_channels(app, prefix)}}


def _channel_name(name: str) -> str:
    if not p.valid_channel_name(name):
        raise ApiProblem(400, "invalid channel name")
    return name


async def channel(hub: Hub, app: App, name: str,
                  query: Mapping[str, str]) -> dict[str, Any]:
    """`GET /apps/{id}/channels/{name}?info=`: {"occupied", "user_count"?,
    "subscription_count"?}. user_count on a non-presence channel is a 400."""
    info = parse_info(query.get("info"))
    _channel_name(name)  # a name no channel can have is a 400, not "not occupied"
    if USER_COUNT in info and p.channel_kind(name) != "presence":
        raise ApiProblem(400, "user_count is only available for presence channels")
    counts = await hub.counts(app, name)
    return {"occupied": counts.subscription_count > 0,
            **await attributes(hub, app, name, info)}


async def users(hub: Hub, app: App, name: str) -> dict[str, Any]:
    """`GET /apps/{id}/channels/{name}/users`: {"users": [{"id"}, ...]}; presence only."""
    if p.channel_kind(_channel_name(name)) != "presence":
        raise ApiProblem(400, "users are only available for presence channels")
    return {"users": [{"id": uid} for uid in await hub.members(app, name)]}


def terminate(hub: Hub, app: App, user_id: str) -> dict[str, Any]:
    """`POST /apps/{id}/users/{user_id}/terminate_connections` (and the Python library's
    `/users/{user_id}/terminate_connections`): closes the user's signed-in sockets."""
    if not p.valid_user_id(user_id):
        raise ApiProblem(400, "user_id must be 1-200 channel-name characters")
    hub.terminate_user(app, user_id)
    return {}
