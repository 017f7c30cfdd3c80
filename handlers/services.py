"""The services every handler reaches through `BaseHandler`'s properties (as Jupyter
Server's "manager objects"): built once by `wolive.make_app`, the composition root, and
kept in the Tornado settings under one key, `SETTINGS_KEY`.

The dataclass is frozen (no handler swaps a service); what changes while the server runs
lives in mutable objects inside it: `ports` (filled by `Wolive.listen` after binding) and
`readiness` (`/readyz`'s last answer).
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from config import Config
from realtime.chat.agent_status import AgentStatus
from realtime.chat.agents import Agents
from realtime.chat.content import Content
from realtime.chat.history import History
from realtime.chat.facade import Chat
from realtime.chat.presence import PresenceTracker
from realtime.chat.quick_replies import QuickReplies
from realtime.chat.ratings import Ratings
from realtime.chat.reports import Reports
from realtime.chat.signals import Signals
from realtime.chat.uploads import Uploads
from realtime.chat.video import Video
from realtime.chat.visitor_cards import VisitorCards
from realtime.chat.wechat import WechatNotifier
from realtime.metrics import Metrics
from realtime.pusher.hub import Hub
from store import Store

if TYPE_CHECKING:  # handlers.ops imports handlers.base, which imports this module
    from .ops import MetricsAccess

#: The Tornado settings key holding the `Services`. (The Pusher engine,
#: realtime/pusher/transport.py, reads its own keys: `wolive_hub`, `wolive_outbox`,
#: `wolive_pinger`.)
SETTINGS_KEY = "wolive"


@dataclass
class Readiness:
    """`/readyz`'s state (handlers/ops.py): its last answer, to log a change once, and the
    database probe in flight, which later probes wait for."""

    ready: bool = True
    probe: asyncio.Future[Any] | None = None


@dataclass(frozen=True)
class Services:
    """What `wolive.make_app` built for the handlers, each once."""

    config: Config
    store: Store
    hub: Hub
    chat: Chat
    #: Agents' and visitors' online state (the Pusher webhooks feed it too).
    presence: PresenceTracker
    #: Agent and business management; hashes with `realtime.passwords`.
    agents: Agents
    agent_status: AgentStatus
    #: Use cases shared by every listener (one message-board and typing rate limiter).
    content: Content
    history: History
    quick_replies: QuickReplies
    ratings: Ratings
    reports: Reports
    signals: Signals
    uploads: Uploads
    video: Video
    #: The workbench's visitor card (who, where from, device, visits, notes, rating).
    visitor_cards: VisitorCards
    wechat: WechatNotifier
    #: What the pages' pusher-js needs: `{"key": ..., "ws_port": ...}`.
    pusher_client: Mapping[str, Any]
    #: /metrics (handlers/ops.py): None while config `metrics.enabled` is false.
    metrics: Metrics | None
    metrics_access: MetricsAccess | None
    #: {listener name: bound port}, filled by `Wolive.listen` (every listener sees it).
    ports: dict[str, int] = field(default_factory=dict)
    readiness: Readiness = field(default_factory=Readiness)


def services_of(settings: Mapping[str, Any]) -> Services:
    """The `Services` in an application's settings (`KeyError` when there are none)."""
    return cast(Services, settings[SETTINGS_KEY])
