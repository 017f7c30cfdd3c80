"""Small values the chat use cases pass around: the logged-in `Agent`, a notice's answer,
an assignment's hand-over, and the shapes of the ids a caller names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: `visiter_id` shape: 1-200 letters, digits or _-.:@.
VISITER_ID_RE = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")
#: `business_id` shape: 1-100 letters, digits or _-. (channel names embed it).
BUSINESS_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,100}$")


#: One hand-over of an assignment decision: `(visiter_id, service_id, previous)`: the visitor
#: now talks to agent `service_id` (0: it waits in the line again) and came from the waiting
#: line (`previous` 0) or from its offline agent `previous` (it was stranded).
Handed = tuple[str, int, int]


@dataclass
class Agent:
    """The logged-in agent, as the use cases see it."""

    service_id: int
    business_id: str
    level: str
    nick_name: str = ""
    avatar: str = ""


@dataclass
class NoticeAnswer:
    """The answer of `/admin/event/notice`: `code` 0-4, `msg`, `data` (see
    `Visitors._notice` for each code's meaning and data)."""

    code: int
    msg: str
    data: dict[str, Any] = field(default_factory=dict)
