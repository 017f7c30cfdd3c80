"""Storage: the WoLive tables and one repository API (`Store`) over SQLite and MySQL/MariaDB.

`Store` is composed here from one mixin per feature, each a `StoreBase` subclass in the module
named for it (`store.agents`, `store.conversations`, `store.messages`, ...); `store.database`
opens, migrates and closes it. Every write runs in its own transaction and is committed before
the method returns, so a caller that pushes an event after `await store.x(...)` never pushes
an uncommitted write. The store raises `store.errors`, never HTTP errors.
"""
from .agent_status import AgentStatusStore
from .agents import AgentStore
from .base import StoreBase
from .board import BoardStore
from .conversations import Conversation, ConversationStore
from .database import SCHEMA_VERSION, DatabaseStore, normalise_url
from .errors import ConfigError, Conflict, NotFound, StoreError, Unavailable
from .faq import FaqStore
from .greetings import GreetingStore
from .history import HistoryStore
from .identity import IdentityStore
from .messages import MessageStore
from .presence import PresenceStore
from .quick_replies import QuickReplyStore
from .ratings import RatingStore
from .reports import ReportStore
from .tabs import TabStore
from .visitors import VisitorStore
from .wechat import WechatStore


class Store(DatabaseStore, AgentStore, AgentStatusStore, PresenceStore, VisitorStore,
            ConversationStore, MessageStore, GreetingStore, FaqStore, TabStore, BoardStore,
            HistoryStore, QuickReplyStore, RatingStore, IdentityStore, WechatStore,
            ReportStore, StoreBase):
    """The repository. Build with `await Store.open(url)`; close with `await store.close()`.

    Each feature's SQL is a mixin (a subclass of `StoreBase` in its own module of this
    package) listed in this class's bases.
    """


__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "Conflict",
    "Conversation",
    "NotFound",
    "Store",
    "StoreError",
    "Unavailable",
    "normalise_url",
]
