"""Storage: the WoLive tables and one repository API over SQLite and MySQL/MariaDB."""
from .errors import ConfigError, Conflict, NotFound, StoreError, Unavailable
from .repo import SCHEMA_VERSION, Conversation, Store, normalise_url

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
