"""`Chat`: the chat use cases of one server, composed from their parts (one module each):

- `conversations`: the shared state, the access rule, transcript lines and pushes;
- `assignment`: who gets a visitor (`pick_agent`, the cap, the decision's lock);
- `handover`: assigning the waiting, claims, transfers, the agent who leaves;
- `visitors`: what a visitor does (notice, messages, contact details);
- `workbench`: what an agent does on its conversations.
"""
from __future__ import annotations

from . import channels
from .visitors import Visitors
from .workbench import Workbench
from ..pusher.hub import Session


class Chat(Visitors, Workbench):
    """The chat use cases of one server. `secret` derives visitor channels."""

    @staticmethod
    def policy(session: Session, channel: str) -> str | None:
        """Who may subscribe to WoLive's public-looking channels: the hub's channel policy,
        `realtime.chat.channels.subscription_refusal` for the socket's caller."""
        return channels.subscription_refusal(session.caller, channel)
