"""`POST /admin/event`: presence webhooks from a Pusher server (WoLive document, "离线访问").

WoLive's own pusher POSTed `channel_added` / `channel_removed` here when an agent's
`kefu{id}` or a visitor's `cu{channel}` was first joined / last left; a standard Pusher
server (or wolive's own webhooks, `pusher.apps[].webhooks`) sends `channel_occupied` /
`channel_vacated`. Both are taken: the presence tracker writes `wolive_service.state` /
`wolive_visiter.state` and pushes `geton` / `logout` as for local sockets, so wolive also
works behind an external Pusher server. Member, client and cache events are acknowledged
and ignored.

The body is trusted only when `X-Pusher-Signature` is hex HMAC-SHA256 of the raw body with
the secret of the app named by `X-Pusher-Key` (one of `pusher.apps`), compared in constant
time (the original WoLive compared with `==`), and its `time_ms` is within
`WEBHOOK_MAX_AGE_S` of our clock (a captured body cannot be replayed later to flip someone's
state).
"""
from __future__ import annotations

import time
from typing import Any, cast

from realtime import inputs
from realtime.pusher.signing import hmac_sha256_hex, same

from .base import ApiError, BaseHandler

#: How far a webhook's `time_ms` may be from our clock (seconds): the official Pusher
#: libraries' webhook validators refuse bodies older than 300 s.
WEBHOOK_MAX_AGE_S = 300
#: Largest webhook body read (bytes): Pusher batches at most a few dozen small events.
MAX_WEBHOOK_BYTES = 256 * 1024
#: `time_ms` values below this are WoLive's float seconds, above it milliseconds.
_MS_THRESHOLD = 10**11
ONLINE_EVENTS = ("channel_occupied", "channel_added")
OFFLINE_EVENTS = ("channel_vacated", "channel_removed")


class WebhookHandler(BaseHandler):
    """`POST /admin/event` with a signed Pusher webhook body `{time_ms, events: [...]}`.

    Answers `{code: 0, msg: "success", data: {applied, ignored}}`; 401 `{code: 1}` for a
    missing or wrong key or signature, or a `time_ms` too far from now (nothing changed),
    400 for a malformed body, 413 for a body over `MAX_WEBHOOK_BYTES`."""

    def check_xsrf_cookie(self) -> None:
        return None  # a server-to-server call, proven by its signature instead

    async def post(self) -> None:
        body = self.request.body
        if len(body) > MAX_WEBHOOK_BYTES:
            raise ApiError(413, 1, f"webhook body over {MAX_WEBHOOK_BYTES} bytes")
        app = self.hub.apps_by_key.get(self.request.headers.get("X-Pusher-Key", ""))
        signature = self.request.headers.get("X-Pusher-Signature", "")
        # Compute a signature even for an unknown key, so timing says nothing about keys.
        expected = hmac_sha256_hex(app.secret if app else "unknown-app", body)
        if app is None or not same(signature, expected):
            raise ApiError(401, 1, "invalid webhook key or signature")
        events = self.parse(body)
        applied = ignored = 0
        for event in events:
            name, channel = event.get("name"), event.get("channel")
            if name in ONLINE_EVENTS + OFFLINE_EVENTS and isinstance(channel, str) and \
                    await self.presence.apply(channel, name in ONLINE_EVENTS):
                applied += 1
            else:
                ignored += 1
        self.answer(0, "success", {"applied": applied, "ignored": ignored})

    @staticmethod
    def parse(body: bytes) -> list[dict[str, Any]]:
        """The events of a webhook body. Raises `ApiError` 400 (malformed), 401 (stale)."""
        try:
            payload = inputs.loads(body)
        except inputs.InputError as exc:
            raise ApiError(400, 1, f"webhook body is not usable JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list) or \
                not all(isinstance(e, dict) for e in payload["events"]):
            raise ApiError(400, 1, "webhook body must be {time_ms, events: [{name, ...}]}")
        stamp = payload.get("time_ms")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            raise ApiError(400, 1, "webhook time_ms missing")
        seconds = stamp / 1000 if stamp > _MS_THRESHOLD else float(stamp)
        if abs(time.time() - seconds) > WEBHOOK_MAX_AGE_S:
            raise ApiError(401, 1, f"webhook time_ms is more than {WEBHOOK_MAX_AGE_S} s "
                                   "from the server's clock")
        return cast(list[dict[str, Any]], payload["events"])


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/event/?", WebhookHandler)]
