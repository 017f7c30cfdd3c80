"""HTTP and WebSocket glue: parse and check input, know the caller, call a use case, answer.

Each module ends with `routes()`; `default_handlers()` assembles them (the route table is
data, as in Jupyter Server).
"""
from __future__ import annotations

from typing import Any

from . import agents, assets, content, conversations, history, identity, install, ops, pages
from . import pusher, quick_replies, ratings, reports, uploads, video, visitor, webhook, wechat


def default_handlers() -> list[Any]:
    """Every route of the main port, most specific first (within a module: `/upload/(.+)`
    and `/assets/(.*)` come after the fixed paths they would also match; no two modules'
    patterns overlap)."""
    out: list[Any] = []
    out.extend(ops.routes())  # metrics and health
    out.extend(pages.routes())  # the workbench and the console's other pages
    out.extend(quick_replies.routes())  # quick replies on the server
    out.extend(ratings.routes())  # end and rating
    out.extend(identity.routes())  # visitor identity settings
    out.extend(reports.routes())  # reports for managers
    for module in (pusher, visitor, conversations, agents, content, history, uploads, video,
                   webhook, wechat, install, assets):
        out.extend(module.routes())
    return out


def legacy_ws_handlers() -> list[Any]:
    """WoLive's WebSocket port (9090): the Pusher socket only."""
    return [r for r in pusher.routes() if r[0].startswith("/app/")]


def legacy_api_handlers() -> list[Any]:
    """WoLive's HTTP API port (2080): the Pusher HTTP API only."""
    return [r for r in pusher.routes() if r[0].startswith(("/apps/", "/users/"))]
