"""Errors the store raises; handlers map them to answers in one place (handlers/base.py)."""
from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFound(StoreError):
    """The row asked for does not exist."""


class Conflict(StoreError):
    """The write would break a uniqueness rule, or the state changed under it."""


class Unavailable(StoreError):
    """The database cannot be used right now (unreachable, connection lost, or SQLite locked
    past its busy timeout); the same call may work shortly. Callers answer 503."""


class ConfigError(StoreError):
    """The database URL is unusable: unknown scheme, or the server refused us."""
