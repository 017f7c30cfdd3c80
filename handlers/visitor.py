"""Visitor-facing API (`/admin/event/...`) and the visitor chat window (`/index/index/home`):
assignment, messages, history, queue position, contact details, typing and read receipts.

Parameter names are the WoLive document's. A visitor proves who it is with `channel`, the
unguessable name the server gave its window (or the signed cookie the window set).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any

from realtime import inputs
from realtime.chat import channels
from realtime.chat.errors import ChatError
from realtime.chat.visitors import CONTACT_LIMITS
from realtime.chat.identity import Resolved
from realtime.pusher.signing import same
from store import NotFound

from . import identity
from .base import QUIET_RATE_LIMIT, ApiError, BaseHandler, VisitorApiHandler, flag

VISITOR_COOKIE = "wolive_visitor"

log = logging.getLogger("wolive.http")


class VisitorMixin(BaseHandler):
    def visitor_channel_arg(self, business_id: str, visiter_id: str) -> str:
        """The `channel` parameter, or the one in the window's signed cookie."""
        channel = self.arg("channel", max_len=64)
        if channel:
            return channel
        raw = self.get_signed_cookie(VISITOR_COOKIE, max_age_days=365)
        if raw:
            try:
                bid, vid, ch = json.loads(raw)
            except ValueError:
                return ""
            if bid == business_id and vid == visiter_id:
                return str(ch)
        return ""


class NoticeHandler(VisitorApiHandler, VisitorMixin):
    """`/admin/event/notice`: assign the visitor to an agent (document codes 0, 1, 2, 3)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        special = self.int_arg("special", 0, lo=0) or None
        answer = await self.chat.notice(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            visiter_name=self.arg("visiter_name", max_len=255),
            avatar=self.arg("avatar", max_len=1024), record=self.arg("record", max_len=2048),
            ip=self.client_ip(), special=special)
        self.answer(answer.code, answer.msg, answer.data or None)

    get = post


class VisitorChatsHandler(VisitorApiHandler, VisitorMixin):
    """`/admin/event/chats`: a visitor's message to its agent. Failure code 3 (document)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        content = self.arg("content", required=True, max_len=self.chat.max_content_arg)
        message = await self.chat.visitor_send(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id), content)
        self.answer(0, "success", message)


class VisitorHistoryHandler(VisitorApiHandler, VisitorMixin):
    """`/admin/event/history`: the visitor's own conversation, oldest first (`before` = cid,
    or `after` = cid: what came after it). Marks the agent's messages read and, when some
    were unread, tells the agent (`kefu{id}` `read`); not with `peek=1` (a site's panel
    loaded while closed: nothing is seen yet)."""

    async def get(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        rows, newly_read = await self.chat.history_for_visitor(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            before_cid=self.int_arg("before", 0, lo=0), limit=self.int_arg("limit", 50, lo=1),
            after_cid=self.int_arg("after", -1, lo=0),
            mark=self.int_arg("peek", 0, lo=0, hi=1) == 0)
        if newly_read:
            # read receipt (realtime/chat/signals.py)
            await self.signals.visitor_saw_history(visiter_id, business_id)
        self.answer(0, "", rows)

    post = get


class PositionHandler(VisitorApiHandler, VisitorMixin):
    """`/admin/event/position`: a waiting visitor's place in the queue.

    Params `visiter_id`, `business_id`, `channel`. Data `{position, state, service_id}`
    (`position` 1-based while `state` is "waiting", else 0)."""

    async def get(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        data = await self.chat.position(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id))
        self.answer(0, "", data)

    post = get


class ContactHandler(VisitorApiHandler, VisitorMixin):
    """`/admin/event/contact`: contact details a visitor leaves when its agent is away
    (docs/api.md, "When the visitor's agent leaves"); the rules are
    `realtime.chat.visitors.Visitors.leave_contact`'s.

    POST `visiter_id`, `business_id`, `channel`, and `name`, `tel`, `email`, `note`
    (`tel` or `email` required). Data `{cid, saved}`: the transcript line's cid and the
    visitor-details fields it filled."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        values = {k: self.arg(k, "", max_len=n) for k, n in CONTACT_LIMITS.items()}
        data = await self.chat.leave_contact(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id), values)
        self.answer(0, "success", data)


class VisitorTypingHandler(VisitorApiHandler, VisitorMixin):
    """`POST /admin/event/typing`: `visiter_id`, `business_id`, `channel`, `typing` 1/0."""

    quiet_statuses = QUIET_RATE_LIMIT

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        self.answer(0, "success", await self.signals.visitor_typing(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            flag(self)))


class VisitorReadHandler(VisitorApiHandler, VisitorMixin):
    """`POST /admin/event/read`: `visiter_id`, `business_id`, `channel`, `cid` (the newest
    agent message the window showed; 0 or absent: all)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        data: dict[str, Any] = await self.signals.visitor_read(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            self.int_arg("cid", 0, lo=0))
        self.answer(0, "success", data)


class HomeHandler(BaseHandler):
    """`/index/index/home`: the visitor chat window, opened by the floating button.

    Query: `business_id` (required), `visiter_id` (made here when empty), `visiter_name`,
    `avatar`, `from_url` (the host page), `special` (an agent id from a personal link).
    """

    html_errors = True

    def set_default_headers(self) -> None:
        # Frameable by any site: the floating button's in-page panel is this page in an
        # iframe (no X-Frame-Options, no frame-ancestors).
        pass

    def check_xsrf_cookie(self) -> None:
        # The POST (below) only carries the widget's token: nothing for CSRF to ride on.
        return None

    async def get(self) -> None:
        await self.home(final=False)

    async def post(self) -> None:
        """The identify page's form (`templates/identify.html`): the same query, plus the
        token the widget put in the URL fragment (`vt_id`, `vt`)."""
        await self.home(final=True)

    async def home(self, final: bool) -> None:
        # Not cut to length: an overlong id is a 400 (`check_ids`), not another visitor.
        business_id = self.get_query_argument("business_id", "")
        asked = self.get_query_argument("visiter_id", "")
        sign = self.get_query_argument("visiter_sign", "")[:200]
        try:  # nothing is written for bad ids or an unknown business
            self.chat.check_ids(asked or "v", business_id)
            await self.store.get_business(business_id)
        except ChatError as exc:
            raise ApiError(max(exc.status, 400), exc.code, exc.msg) from None
        except NotFound:
            raise ApiError(404, 1, f"unknown business_id {business_id!r}") from None
        # Who this browser is (handlers/identity.py), the visit and the visitor card's note:
        # one transaction (`Store.unit`).
        async with self.store.unit():
            found = await self.visit(business_id, asked, sign, final)
        if found is None:
            # Another browser owns this id: a token in the URL fragment (the widget's) may
            # still prove this one is it; the page posts it back (never in a URL).
            self.set_header("Cache-Control", "no-store")
            self.render("identify.html")
            return
        resolved, visitor, business = found
        visiter_id = resolved.visiter_id
        self.set_signed_cookie(VISITOR_COOKIE, json.dumps(
            [business_id, visiter_id, visitor["channel"]]), expires_days=365,
            **identity.cookie_kwargs(self))
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "same-origin")
        boot = self.boot(visitor)
        # video.js shows the video button only when the business allows calls.
        boot["video_state"] = business["video_state"]
        boot["voice_state"] = business["voice_state"]  # the window's sound, by default
        if boot["embed"] and resolved.token:
            # The widget keeps it in its page's storage (third-party cookies may be blocked).
            boot["identity"] = {"visiter_id": visiter_id, "token": resolved.token}
        self.render("chat.html", boot=boot)

    async def visit(self, business_id: str, asked: str, sign: str, final: bool
                    ) -> tuple[Resolved, dict[str, Any], dict[str, Any]] | None:
        """Resolve the browser's visitor, record the visit: `(resolved, visitor row,
        business row)`, or None when the identify page must ask for the widget's token
        first. Raises `ApiError` 400/403."""
        legacy = self.legacy_visitor(business_id)
        extra = []
        if final:
            vt_id, vt = self.get_body_argument("vt_id", "")[:200], self.get_body_argument(
                "vt", "")[:100]
            if vt_id and vt:
                extra.append((vt_id, vt))
        elif await identity.identity_of(self).would_derive(
                business_id, asked, sign,
                identity.held_tokens(self, business_id, asked), legacy):
            return None
        resolved = await identity.resolve(self, business_id, asked, sign, extra, legacy)
        visiter_id = resolved.visiter_id
        try:
            visitor, business = await self.chat.visit(
                visiter_id, business_id, identity.display_name(
                    self.get_query_argument("visiter_name", ""), asked, visiter_id),
                self.get_query_argument("avatar", ""), self.client_ip(),
                self.get_query_argument("from_url", "") or self.request.headers.get(
                    "Referer", ""))
        except ChatError as exc:
            raise ApiError(max(exc.status, 400), exc.code, exc.msg) from None
        # For the agent's visitor card (store/visitors.py): browser, referrer, visits.
        await self.store.note_visit(visiter_id, business_id,
                                    self.request.headers.get("User-Agent", ""),
                                    self.get_query_argument("referrer", "")[:1024])
        return resolved, visitor, business

    def legacy_visitor(self, business_id: str) -> list[str]:
        """The visitor id the window's signed cookie names for this business, if any."""
        raw = self.get_signed_cookie(VISITOR_COOKIE, max_age_days=365)
        try:
            bid, vid, ch = json.loads(raw or "null") or ("", "", "")
        except (ValueError, TypeError):
            return []
        if (bid == business_id and isinstance(vid, str) and isinstance(ch, str)
                and vid and same(ch, self.chat.channel_for(business_id, vid))):
            return [vid]
        return []

    def boot(self, visitor: dict[str, Any]) -> dict[str, Any]:
        # `special` (a personal link's agent id) is only passed on when it is one: a bad
        # value in a site's snippet must not turn the visitor's window into a refusal (the
        # notice would answer 400); the visitor is assigned as without it.
        special: int | None = None
        raw = self.get_query_argument("special", "", strip=False)
        if raw:
            try:
                special = inputs.whole_number(raw, 1, 2**63 - 1)
            except inputs.InputError:
                log.info("chat window: ignoring special=%r (not an agent id)", raw[:40])
        return {
            "visiter_id": visitor["visiter_id"], "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "business_id": visitor["business_id"],
            "channel": visitor["channel"], "record": visitor["from_url"],
            # The page subscribes to these names as given (realtime/chat/channels.py builds them).
            "channels": {"visitor": channels.visitor(visitor["channel"])},
            "special": special, "pusher": self.pusher_client,
            "embed": embed_origin(self.get_query_argument("embed", "")),
        }


EMBED_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\]"
                          r"(:[0-9]{1,5})?")


def embed_origin(value: str) -> str | None:
    """The `embed` query parameter of the chat window: the origin of the site page whose
    panel shows it (`scheme://host[:port]`, lower-cased), or None when it is empty or not
    an origin (then the window is not in a panel and talks to no page)."""
    value = value.strip()
    if len(value) > 300 or not EMBED_ORIGIN.fullmatch(value):
        return None
    return value.lower()


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/event/notice", NoticeHandler),
        # `/admin/event/chat`: deployed WoLive's spelling of the document's URL (its own
        # chat.js posts there), so an old site's scripts keep working.
        (r"/admin/event/chats?", VisitorChatsHandler),
        (r"/admin/event/history", VisitorHistoryHandler),
        (r"/admin/event/position", PositionHandler),
        (r"/admin/event/contact", ContactHandler),
        (r"/admin/event/typing", VisitorTypingHandler),
        (r"/admin/event/read", VisitorReadHandler),
        (r"/index/index/home", HomeHandler),
    ]
