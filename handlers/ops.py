"""Operations: `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz` (it can
serve: the database answers and it is not shutting down), for load balancers, orchestrators
and monitoring. README, "Operating wolive"; docs/api.md, "Operations".
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import choose_encoder

from config import Config
from realtime.metrics import background

from .base import ApiError, BaseHandler

log = logging.getLogger("wolive.ops")

#: Longest `/readyz` waits for the database's answer before saying "not ready" (seconds);
#: load balancers' probes time out after a few seconds themselves.
READY_TIMEOUT_S = 2.0

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Headers a reverse proxy adds: without `server.xheaders`, a request carrying one came
#: through a proxy, and its (proxy's) loopback address proves nothing.
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded")


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read `/metrics` (config `metrics`): every check that is configured must
    pass: `token` (non-empty: `Authorization: Bearer <token>`) and `allow` (non-empty: the
    client's address is in one of these networks)."""

    token: str
    allow: tuple[IPNetwork, ...]
    xheaders: bool

    @classmethod
    def from_config(cls, cfg: Config) -> MetricsAccess:
        """From the checked config (`wolive.load_config` validated `allow_ips`)."""
        m = cfg.metrics
        return cls(token=m.token,
                   allow=tuple(ipaddress.ip_network(a, strict=False) for a in m.allow_ips),
                   xheaders=cfg.server.xheaders)

    def refusal(self, headers: Any, remote_ip: str) -> str | None:
        """None when the caller may read the metrics, else why not."""
        if self.token:
            scheme, _, given = headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), self.token.encode()):
                return "a valid bearer token is required"
        if self.allow:
            if not self.xheaders and any(h in headers for h in PROXY_HEADERS):
                return "came through a proxy (set server.xheaders to trust its address)"
            try:
                ip = ipaddress.ip_address(remote_ip)
            except ValueError:
                return "no client address"
            if not any(ip in net for net in self.allow):
                return f"{remote_ip} is not in metrics.allow_ips"
        return None


class _OpsHandler(BaseHandler):
    """No agent lookup (no database read), nothing cached; HEAD as GET (probes use it)."""

    head_like_get = True

    async def prepare(self) -> None:
        self.agent_row = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")


class MetricsHandler(_OpsHandler):
    """`GET /metrics`: the Prometheus text format (OpenMetrics when the scraper asks for it
    in `Accept`). 404 while `metrics.enabled` is false; 403 for a caller `MetricsAccess`
    refuses."""

    async def get(self) -> None:
        metrics, access = self.metrics, self.metrics_access
        if metrics is None or access is None:
            raise ApiError(404, 1, "not found: metrics are off (config metrics.enabled)")
        why = access.refusal(self.request.headers, self.request.remote_ip or "")
        if why is not None:
            raise ApiError(403, 1, f"metrics: {why}")
        await metrics.refresh_database_gauges()
        encoder, content_type = choose_encoder(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.finish(encoder(metrics.registry))


class HealthHandler(_OpsHandler):
    """`GET /healthz`: 200 `ok` while the process answers at all (liveness)."""

    access_log_debug = True

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok\n")


class ReadyHandler(_OpsHandler):
    """`GET /readyz`: 200 `{"status": "ready"}` when the server can serve: not shutting
    down, in touch with its cluster (`Adapter.problem`) and the database answers a trivial
    query within `READY_TIMEOUT_S`; else 503
    `{"status": "not ready", "reason": ...}`. A change either way is logged once (each
    answer only at DEBUG)."""

    access_log_debug = True

    async def get(self) -> None:
        reason = await self._problem()
        state = self.readiness
        if reason is None:
            if not state.ready:
                log.warning("ready again")
            state.ready = True
            self._answer(200, {"status": "ready"})
            return
        if state.ready:
            log.warning("not ready: %s", reason)
        state.ready = False
        self.set_header("Retry-After", "5")
        self._answer(503, {"status": "not ready", "reason": reason})

    async def _problem(self) -> str | None:
        if self.hub.closing:
            return "shutting down"
        # A node cut off from the cluster closes its sockets; it must not be sent new ones.
        cluster = self.hub.adapter.problem()
        if cluster is not None:
            return cluster
        # One probe at a time: a slow one is left to finish (cancelling it would cost its
        # pooled connection), and probes meanwhile wait for it instead of adding more.
        state = self.readiness
        probe = state.probe
        if probe is None or probe.done():
            probe = state.probe = background(self.store.ping())
        try:
            await asyncio.wait_for(asyncio.shield(probe), READY_TIMEOUT_S)
        except TimeoutError:
            return f"database: no answer within {READY_TIMEOUT_S:g} s"
        except Exception as exc:  # any failure of the probe is "not ready", with its kind
            cause = exc.__cause__ or getattr(exc, "orig", None) or exc
            return f"database: {type(cause).__name__}"
        return None

    def _answer(self, status: int, body: dict[str, str]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))


def routes() -> list[tuple[str, type]]:
    return [
        (r"/metrics", MetricsHandler),
        (r"/healthz", HealthHandler),
        (r"/readyz", ReadyHandler),
    ]
