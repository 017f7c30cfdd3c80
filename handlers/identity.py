"""Visitor identity bound to the browser (rules in `realtime.chat.identity`).

- The chat window's token cookie (`wolive_vt`, signed, HttpOnly): up to `MAX_HELD` entries
  `[business_id, asked visiter_id, visiter_id, token]`, most recent first.
- `/admin/manager/identity`: a manager's view of its business's identity secret and the
  "require signed ids" switch (docs/api.md, "Visitor identity").
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from realtime.chat.identity import Identity, IdentityRefused, Resolved

from .base import AgentApiHandler, ApiError, BaseHandler

TOKEN_COOKIE = "wolive_vt"
#: Days the token cookie lasts without a visit (as WoLive's visitor id, a year).
TOKEN_COOKIE_DAYS = 365
#: Identities one browser keeps (a host site's users switching accounts on one computer).
MAX_HELD = 6
#: Longest JSON kept in the cookie (characters): signed and base64-encoded it stays under
#: the 4,096 bytes browsers keep per cookie (RFC 6265 §6.1).
MAX_COOKIE_JSON = 2400


def identity_of(handler: BaseHandler) -> Identity:
    return Identity(handler.store)


def held_tokens(handler: BaseHandler, business_id: str, asked: str
                ) -> list[tuple[str, str]]:
    """`(visiter_id, token)` pairs the browser's cookie holds for this business and asked id."""
    return [(e[2], e[3]) for e in _entries(handler)
            if e[0] == business_id and e[1] == asked]


def _entries(handler: BaseHandler) -> list[list[str]]:
    raw = handler.get_signed_cookie(TOKEN_COOKIE, max_age_days=TOKEN_COOKIE_DAYS)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, list) and len(e) == 4
            and all(isinstance(x, str) for x in e)][:MAX_HELD]


def cookie_kwargs(handler: BaseHandler) -> dict[str, Any]:
    """HttpOnly always. Over https `SameSite=None; Secure`, so the cookie also reaches the
    window inside a site's (cross-site) panel where the browser allows third-party cookies;
    over plain http `SameSite=Lax` (browsers refuse `None` without `Secure`): in a cross-site
    panel the widget's fragment token is the proof then."""
    if handler.request.protocol == "https":
        return {"httponly": True, "secure": True, "samesite": "None"}
    return {"httponly": True, "samesite": "Lax"}


def keep_token(handler: BaseHandler, business_id: str, asked: str, resolved: Resolved,
               token: str) -> None:
    """Put `[business_id, asked, visiter_id, token]` first in the browser's cookie."""
    entries = [e for e in _entries(handler) if not (e[0] == business_id and e[1] == asked)]
    entries.insert(0, [business_id, asked, resolved.visiter_id, token])
    entries = entries[:MAX_HELD]
    value = json.dumps(entries)
    while len(entries) > 1 and len(value) > MAX_COOKIE_JSON:  # the oldest go first
        entries.pop()
        value = json.dumps(entries)
    handler.set_signed_cookie(TOKEN_COOKIE, value, expires_days=TOKEN_COOKIE_DAYS,
                              **cookie_kwargs(handler))


def display_name(name: str, asked: str, visiter_id: str) -> str:
    """The name agents see: a visitor given its own id because another browser owns the asked
    one keeps the site's name plus `#` and the id's last 4 characters ("Alice #7d39"), so two
    conversations of one name are told apart. An empty name stays empty (the default name
    is made from the id)."""
    name = name.strip()
    if name and asked and visiter_id != asked:
        return f"{name[:240]} #{visiter_id[-4:]}"
    return name


def refused(exc: IdentityRefused) -> ApiError:
    """403 with the refusal's code, also in the text (the chat window answers an HTML page)."""
    return ApiError(403, exc.code, f"{exc.msg} (code {exc.code})")


async def resolve(handler: BaseHandler, business_id: str, asked: str, sign: str,
                  extra: Iterable[tuple[str, str]], legacy: Iterable[str]) -> Resolved:
    """The browser's visitor for a chat window (`Identity.resolve`), its token kept in the
    cookie when one is issued or proved by `extra` (the widget's fragment). Raises `ApiError`
    403 (codes 5, 6) when refused."""
    extra = list(extra)
    try:
        resolved = await identity_of(handler).resolve(
            business_id, asked, sign, held_tokens(handler, business_id, asked) + extra,
            legacy)
    except IdentityRefused as exc:
        raise refused(exc) from None
    token = resolved.token or next((t for v, t in extra if v == resolved.visiter_id), None)
    if token:
        keep_token(handler, business_id, asked, resolved, token)
    return resolved


class IdentitySettingsHandler(AgentApiHandler):
    """`/admin/manager/identity` (manager and up; `business_id` for a super_manager, else
    the agent's own). GET: `{business_id, secret, require_signed}`. POST `require_signed`
    (0/1) and/or `regenerate=1` (a new secret: signatures made with the old one stop
    working); answers the same data."""

    async def business(self) -> str:
        self.require_level("manager")
        business_id = self.arg("business_id", max_len=100) or self.agent.business_id
        self.require_business(business_id)
        await self.store.get_business(business_id)  # NotFound: 404
        return business_id

    async def get(self) -> None:
        business_id = await self.business()
        await self.show(business_id)

    async def show(self, business_id: str) -> None:
        settings = await identity_of(self).settings(business_id)
        self.answer(0, "", {"business_id": business_id, **settings})

    async def post(self) -> None:
        business_id = await self.business()
        regenerate = self.int_arg("regenerate", 0, lo=0, hi=1)
        require = self.arg("require_signed", max_len=1)
        if require not in ("", "0", "1"):
            raise ApiError(400, 1, "require_signed must be 0 or 1")
        if not regenerate and not require:
            raise ApiError(400, 1, "nothing to change: send require_signed or regenerate=1")
        identity = identity_of(self)
        if regenerate:
            await identity.regenerate(business_id)
        if require:
            await identity.require_signed(business_id, require == "1")
        await self.show(business_id)


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/manager/identity", IdentitySettingsHandler)]
