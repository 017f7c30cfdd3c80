"""Visitor identity bound to the browser: knowing an id is never proof.

A visitor's channel is derived from `(business_id, visiter_id)` with a server secret, and the
channel is what every visitor API takes as proof. So the chat window must hand a visitor's
channel only to a browser that is that visitor:

- **Tokens.** The first browser to use a `visiter_id` gets a secret token (32 random bytes,
  64 hex); the server keeps only its SHA-256 (`wolive_visitor_owner`). The chat window keeps it
  in an HttpOnly cookie; the in-page widget also keeps it in the host page's localStorage and
  hands it to the window in the URL fragment (never sent to a server).
- **Signed ids.** `visiter_sign = hex(HMAC-SHA256(identity secret, visiter_id))` made by the
  host's server proves the id in any browser (Chatwoot's `identifier_hash`, tawk.to's secure
  mode, Crisp's identity verification). A wrong one is refused.
- **Unsigned ids** are the browser's own: a second browser presenting one that another
  browser owns (or a visitor that chatted before tokens existed, unless the browser has the
  window's old signed cookie for it) gets a distinct visitor, `<visiter_id>:<8 hex>`
  (`derived`), so it never sees the first one's conversation. With the business's
  `require_signed` on, an unsigned id the browser does not already own is refused.
- An empty `visiter_id` gets a new random one (`v` + 24 hex), owned by this browser.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Iterable, Optional

from store.identity import IdentityStore

from .values import VISITER_ID_RE
from ..pusher.signing import hmac_sha256_hex, same

#: A token: 64 lower-case hex characters.
TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")
#: A signature: 64 hex characters (either case accepted).
SIGN_RE = re.compile(r"^[0-9A-Fa-f]{64}$")
#: Hex characters added to an unsigned id another browser owns (32 bits: distinct per browser).
DERIVED_SUFFIX_HEX = 8
#: The longest base kept in a derived id, so that it fits the 200-character column.
DERIVED_BASE_CHARS = 200 - 1 - DERIVED_SUFFIX_HEX

#: Answer codes of refusals (docs/api.md, "Visitor identity"), all HTTP 403.
CODE_BAD_SIGN = 5
CODE_SIGN_REQUIRED = 6


class IdentityRefused(Exception):
    """A visitor id that may not be used: `code` (`CODE_BAD_SIGN`, `CODE_SIGN_REQUIRED`),
    `msg` (Chinese and English); answered HTTP 403."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class Resolved:
    """Who the browser is: `visiter_id` to use (maybe derived), `token` newly issued for it
    (None when the browser already proved itself or the id was signed), `signed`, and
    `derived` (the asked id belongs to another browser, this one got its own)."""

    visiter_id: str
    token: Optional[str]
    signed: bool = False
    derived: bool = False


def token_hash(token: str) -> str:
    """SHA-256 hex of a token: what the server keeps."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def sign_visiter_id(secret: str, visiter_id: str) -> str:
    """`hex(HMAC-SHA256(secret, visiter_id))`: the `visiter_sign` a host computes."""
    return hmac_sha256_hex(secret, visiter_id)


def is_derived_from(candidate: str, asked: str) -> bool:
    """Whether `candidate` is `asked` itself or an id derived from it (`derived`)."""
    if candidate == asked:
        return True
    base, sep, tail = candidate.rpartition(":")
    return (bool(sep) and base == asked[:DERIVED_BASE_CHARS] and len(tail) == DERIVED_SUFFIX_HEX
            and all(c in "0123456789abcdef" for c in tail))


def derived(asked: str) -> str:
    """A fresh id of its own for a browser asking for `asked`, which another browser owns."""
    return f"{asked[:DERIVED_BASE_CHARS]}:{secrets.token_hex(DERIVED_SUFFIX_HEX // 2)}"


class Identity:
    """Decides which visitor a browser is (see the module docstring)."""

    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def settings(self, business_id: str) -> dict[str, object]:
        """`{secret, require_signed}` of the business (a secret is made on first use)."""
        row = await self.store.identity_settings(business_id, secrets.token_hex(32))
        return {"secret": row["secret"], "require_signed": bool(row["require_signed"])}

    async def regenerate(self, business_id: str) -> str:
        """A new identity secret for the business (signatures made with the old one stop
        working); returns it."""
        await self.settings(business_id)
        secret = secrets.token_hex(32)
        await self.store.set_identity_settings(business_id, secret=secret)
        return secret

    async def require_signed(self, business_id: str, on: bool) -> None:
        await self.settings(business_id)
        await self.store.set_identity_settings(business_id, require_signed=on)

    async def owns(self, business_id: str, visiter_id: str, token: str) -> bool:
        """Whether `token` is the one issued to the owner of the visitor."""
        if not TOKEN_RE.match(token or ""):
            return False
        have = await self.store.visitor_owner_hash(business_id, visiter_id)
        return have is not None and same(have, token_hash(token))

    async def resolve(self, business_id: str, asked: str, sign: str,
                      held: Iterable[tuple[str, str]] = (),
                      legacy: Iterable[str] = ()) -> Resolved:
        """The visitor a browser is, for a chat window asking for `asked` (maybe empty) with
        `sign` (maybe empty). `held`: `(visiter_id, token)` pairs the browser presented
        (cookie, or the widget's fragment); `legacy`: visitor ids the server's own signed
        window cookie names (set before tokens existed, or beside them): proof as well.

        Raises `IdentityRefused` for a wrong signature, or an unsigned id the browser does
        not own while the business requires signatures. Writes an owner row when a token is
        issued."""
        if sign:
            settings = await self.settings(business_id)
            if not asked or not SIGN_RE.match(sign) or not same(
                    sign.lower(), sign_visiter_id(str(settings["secret"]), asked)):
                raise IdentityRefused(CODE_BAD_SIGN, "visiter_sign does not match visiter_id"
                                      " / 访客签名不正确")
            token = await self._claim(business_id, asked)
            return Resolved(asked, token, signed=True)
        for vid, token in held:
            if (VISITER_ID_RE.match(vid or "") and (not asked or is_derived_from(vid, asked))
                    and await self.owns(business_id, vid, token)):
                return Resolved(vid, None)
        if not asked:
            while True:
                vid = "v" + secrets.token_hex(12)
                token = await self._claim(business_id, vid)
                if token:
                    return Resolved(vid, token)
        if asked in legacy:  # the server's own signed cookie named this visitor
            return Resolved(asked, await self._claim(business_id, asked))
        settings = await self.settings(business_id)
        if settings["require_signed"]:
            raise IdentityRefused(CODE_SIGN_REQUIRED, "this site requires a signed visiter_id "
                                  "(visiter_sign) / 该网站要求访客身份签名")
        token = await self._claim_new(business_id, asked)
        if token:
            return Resolved(asked, token)
        while True:
            vid = derived(asked)
            token = await self._claim(business_id, vid)
            if token:
                return Resolved(vid, token, derived=True)

    async def would_derive(self, business_id: str, asked: str, sign: str,
                           held: Iterable[tuple[str, str]] = (),
                           legacy: Iterable[str] = ()) -> bool:
        """Whether `resolve` (same arguments) would give the browser a derived id, which a
        token the server has not seen yet (the widget's fragment) might still avoid. Reads
        only."""
        if sign or not asked or asked in legacy:
            return False
        for vid, token in held:
            if is_derived_from(vid, asked) and await self.owns(business_id, vid, token):
                return False
        return (await self.store.visitor_owner_hash(business_id, asked) is not None
                or await self.store.visitor_known(business_id, asked))

    async def _claim_new(self, business_id: str, visiter_id: str) -> Optional[str]:
        """`_claim` for a visitor nobody has chatted as yet: one that chatted before tokens
        existed has an unknown owner (knowing its id proves nothing), so None."""
        if await self.store.visitor_known(business_id, visiter_id):
            return None
        return await self._claim(business_id, visiter_id)

    async def _claim(self, business_id: str, visiter_id: str) -> Optional[str]:
        """A new token for the visitor if nobody owned it (the owner row written), else None."""
        token = secrets.token_hex(32)
        if await self.store.claim_visitor(business_id, visiter_id, token_hash(token)):
            return token
        return None
