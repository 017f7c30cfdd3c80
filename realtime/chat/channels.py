"""Channel names and who may join them: the one place that builds, parses and polices them.

The WoLive document names the channels its pages listen on ("在wolive中 客服后台监听了3个频道"
and "访客监听2个频道"); wolive keeps those names, so WoLive-compatible integrations keep
working, and adds a few of its own:

======================  ==============================  ==========================================
kind                    name                            who listens (source)
======================  ==============================  ==========================================
`AGENT`                 `kefu{service_id}`              the agent's consoles: cu-event, geton,
                                                        logout, video, video-refuse (the WoLive
                                                        document); held = the agent is online
`AGENT_NOTICES`         `ud{service_id}`                the agent's consoles: on_notice (the
                                                        WoLive document), status (wolive)
`BUSINESS`              `all{business_id}`              the business's agents: on_notice, a
                                                        visitor waits (the WoLive document)
`VISITOR`               `cu{channel}`                   the visitor's windows: my-event, video,
                                                        video-refuse, cu_notice (the WoLive
                                                        document); `channel` is
                                                        `realtime.pusher.signing.visitor_channel`
`AGENT_STATE`           `se{service_id}`                the agent's visitors' windows: geton,
                                                        logout (the WoLive document), status
`TEAM`                  `presence-business-{business_id}`  online colleagues (wolive)
`PRIVATE_AGENT`         `private-agent-{service_id}`    an app's own private channel per agent
`ENCRYPTED_AGENT`       `private-encrypted-agent-{id}`  the same, end-to-end encrypted
`CALL`                  `private-call-{32 hex}`         one video call's signalling
                                                        (`realtime.chat.video`)
======================  ==============================  ==========================================

`parse` says which kind a name is and its id, with one pattern per kind (`PATTERNS`). Where
the modules used to disagree (`kefu\\d+` in the channel policy, `kefu\\d{1,10}` in presence)
the stricter one is kept: a `service_id` is an `int(11)` column, ten digits at most. A
visitor's channel is `v` + 40 hex digits, the only shape `visitor_channel` gives (imported
WoLive visitors get theirs re-derived, store/wolive_import.py).

The policy: `subscription_refusal` decides public channels (WoLive's names look public; the
hub asks it on every subscribe), `may_join` signs private and presence channels for
`/pusher/auth`. Call channels are authorized by the call itself (`Video.may_join_call`).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

# ---- kinds ----------------------------------------------------------------------------------

AGENT = "agent"
AGENT_NOTICES = "agent_notices"
BUSINESS = "business"
VISITOR = "visitor"
AGENT_STATE = "agent_state"
TEAM = "team"
PRIVATE_AGENT = "private_agent"
ENCRYPTED_AGENT = "encrypted_agent"
CALL = "call"

#: Name prefix of each kind (the id follows it).
PREFIXES: dict[str, str] = {
    AGENT: "kefu",
    AGENT_NOTICES: "ud",
    BUSINESS: "all",
    VISITOR: "cu",
    AGENT_STATE: "se",
    TEAM: "presence-business-",
    PRIVATE_AGENT: "private-agent-",
    ENCRYPTED_AGENT: "private-encrypted-agent-",
    CALL: "private-call-",
}
CALL_PREFIX = PREFIXES[CALL]

_SERVICE_ID = r"[0-9]{1,10}"                  # wolive_service.service_id, int(11)
_BUSINESS_ID = r"[A-Za-z0-9_\-.]{1,100}"      # realtime.chat.values.BUSINESS_ID_RE
_VISITOR = r"v[0-9a-f]{40}"                   # realtime.pusher.signing.visitor_channel
_CALL = r"[0-9a-f]{32}"                       # secrets.token_hex(16)

#: The one pattern of each kind: the whole name, the id in group 1.
PATTERNS: dict[str, re.Pattern[str]] = {
    kind: re.compile(re.escape(PREFIXES[kind]) + f"({shape})")
    for kind, shape in ((AGENT, _SERVICE_ID), (AGENT_NOTICES, _SERVICE_ID),
                        (BUSINESS, _BUSINESS_ID), (VISITOR, _VISITOR),
                        (AGENT_STATE, _SERVICE_ID), (TEAM, _BUSINESS_ID),
                        (PRIVATE_AGENT, _SERVICE_ID), (ENCRYPTED_AGENT, _SERVICE_ID),
                        (CALL, _CALL))
}
#: Kinds whose id is a service_id (parsed to int).
_BY_AGENT = frozenset((AGENT, AGENT_NOTICES, AGENT_STATE, PRIVATE_AGENT, ENCRYPTED_AGENT))
# No prefix is the start of another, so a name has at most one candidate kind.
_ORDER = tuple(PATTERNS)


# ---- building -------------------------------------------------------------------------------

def agent(service_id: int | str) -> str:
    """`kefu{service_id}`, e.g. `agent(12) == "kefu12"`: the agent's consoles."""
    return f"kefu{service_id}"


def agent_notices(service_id: int | str) -> str:
    """`ud{service_id}`: the agent's consoles' `on_notice` and `status`."""
    return f"ud{service_id}"


def business(business_id: str) -> str:
    """`all{business_id}`: every agent of the business."""
    return f"all{business_id}"


def visitor(channel: str) -> str:
    """`cu{channel}` (`channel` as stored in `wolive_visiter.channel`): the visitor's windows."""
    return f"cu{channel}"


def agent_state(service_id: int | str) -> str:
    """`se{service_id}`: the windows of the agent's visitors (its online state, status)."""
    return f"se{service_id}"


def team(business_id: str) -> str:
    """`presence-business-{business_id}`: the business's online agents (a presence channel)."""
    return f"presence-business-{business_id}"


def private_agent(service_id: int | str) -> str:
    """`private-agent-{service_id}`."""
    return f"private-agent-{service_id}"


def encrypted_agent(service_id: int | str) -> str:
    """`private-encrypted-agent-{service_id}`."""
    return f"private-encrypted-agent-{service_id}"


def call(token: str) -> str:
    """`private-call-{token}` (`token`: 32 hex digits)."""
    return f"private-call-{token}"


def new_call() -> str:
    """A fresh, unguessable call channel: `private-call-` + 32 random hex digits."""
    return call(secrets.token_hex(16))


def agent_console(service_id: int, business_id: str) -> dict[str, str]:
    """The channels an agent's console pages use, by role (their boot data,
    `realtime.chat.agent_status.agent_channels`): `presence` (`kefu{id}`: held while a page is
    open, so the agent is online), `own` (`ud{id}`), `team` (`presence-business-{bid}`) and
    `business` (`all{bid}`)."""
    return {"presence": agent(service_id), "own": agent_notices(service_id),
            "team": team(business_id), "business": business(business_id)}


# ---- parsing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Named:
    """What a channel name is: its `kind` and id (`int` service_id for the agent kinds,
    else the text: business_id, the visitor's channel, the call's token)."""

    kind: str
    id: Any


def parse(name: str) -> Named | None:
    """The kind and id of a channel name, or None when it is no kind's (`PATTERNS`)."""
    if not isinstance(name, str):
        return None
    for kind in _ORDER:
        if name.startswith(PREFIXES[kind]):
            m = PATTERNS[kind].fullmatch(name)
            if m:
                return Named(kind, int(m.group(1)) if kind in _BY_AGENT else m.group(1))
    return None


def is_kind(name: str, *kinds: str) -> bool:
    """True when `name` parses as one of `kinds`."""
    named = parse(name)
    return named is not None and named.kind in kinds


def visitor_part(name: str) -> str | None:
    """The visitor's channel in `cu{channel}` (the part after `cu`), or None when `name`
    does not start with `cu`. Lenient on purpose: for looking a visitor up by what a caller
    typed (the WoLive document's `channel` parameter), not for deciding who may listen."""
    prefix = PREFIXES[VISITOR]
    return name[len(prefix):] if name.startswith(prefix) else None


# ---- policy ---------------------------------------------------------------------------------

class Caller(Protocol):
    """Who subscribes: `realtime.pusher.hub.Caller` (None ids for a visitor)."""

    service_id: int | None
    business_id: str | None


def _agent_like(name: str) -> bool:
    """`kefu` or `ud` followed by ASCII digits only, valid id or not."""
    for prefix in (PREFIXES[AGENT], PREFIXES[AGENT_NOTICES]):
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest.isascii() and rest.isdigit():
            return True
    return False


def subscription_refusal(caller: Caller, name: str) -> str | None:
    """Why `caller` may not subscribe to the public channel `name`, or None to allow it
    (in the original WoLive every channel was public): `kefu{id}` and
    `ud{id}` only that agent's console (any other `kefu`/`ud` + digits name nobody's),
    anything starting with `all` only `all{caller's business_id}`. Visitor (`cu`) and
    `se` channels are left open: a visitor's channel is unguessable, an agent's state is
    what its visitors see anyway."""
    named = parse(name)
    if named is not None and named.kind in (AGENT, AGENT_NOTICES):
        if caller.service_id != named.id:
            return "only that agent's console may subscribe"
        return None
    if _agent_like(name):
        return "only that agent's console may subscribe"
    if name.startswith(PREFIXES[BUSINESS]) and (
            caller.business_id is None or name != business(caller.business_id)):
        return "only the business's agents may subscribe"
    return None


class Member(Protocol):
    """A logged-in agent as `may_join` needs it (`realtime.chat.values.Agent`)."""

    service_id: int
    business_id: str
    nick_name: str
    avatar: str


def may_join(member: Member | None, name: str) -> dict[str, Any] | None:
    """Who may join which private/presence channel through wolive's own `/pusher/auth`.

    A logged-in agent may join `private-agent-{its service_id}`,
    `private-encrypted-agent-{its service_id}` (answer `{}`: no channel_data) and
    `presence-business-{its business_id}` (answer the member: `{"user_id":
    str(service_id), "user_info": {"nick_name", "avatar"}}`). Everyone else, and every other
    channel, gets None (refused). Apps that sign their own channels with an official server
    library do not go through here."""
    if member is None:
        return None
    if name in (private_agent(member.service_id), encrypted_agent(member.service_id)):
        return {}
    if name == team(member.business_id):
        return {"user_id": str(member.service_id),
                "user_info": {"nick_name": member.nick_name, "avatar": member.avatar}}
    return None
