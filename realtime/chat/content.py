"""Content use cases: greetings, FAQ, visitor-side tabs, business switches and the message
board (`Content`).

Rich content (FAQ answers, tab bodies) is sanitised with `realtime.rich_text` before it is
stored, and only the sanitised HTML is stored; everything else (greetings, questions,
titles, board messages) is plain text that clients render as text.
Use cases raise `ChatError(code, msg, status)`; handlers render it (handlers/base.py).
Level checks (manager, super_manager) are the handlers'; which rows a caller may see is
decided here, from the `Agent` and the business it is scoped to.
"""
from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from store import NotFound, Store

from . import channels
from .agents import why_not_act_on
from .errors import ChatError
from .paging import check_page, page_of
from .values import BUSINESS_ID_RE, Agent
from ..pusher.hub import Hub
from ..rate_limit import RateLimiter
from ..rich_text import plain_text, sanitise_rich

# ---- limits (each a named constant, with its unit and reason) ---------------------------

#: Longest greeting (characters): one or two sentences shown when a chat starts.
MAX_GREETING_CHARS = 500
#: Longest FAQ question / tab title (characters); `wolive_tablist.title` is VARCHAR(255).
MAX_QUESTION_CHARS = 500
MAX_TITLE_CHARS = 255
#: Largest stored rich body or its plain-text version (UTF-8 bytes): MySQL's TEXT column
#: (`wolive_tablist.content`) holds 65,535 bytes; FAQ answers get the same cap.
MAX_RICH_BYTES = 65_535
#: Most FAQ entries / tabs one business may have: the visitor window loads them all.
MAX_QUESTIONS_PER_BUSINESS = 200
MAX_TABS_PER_BUSINESS = 20
#: Message board fields (characters): a note and a way to answer it, not a document.
MAX_BOARD_NAME_CHARS = 64
MAX_BOARD_CONTENT_CHARS = 2000
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
#: Accepted board messages per client IP in `BOARD_WINDOW_S` seconds (a small deterrent
#: against flooding a business's console; kept in this process's memory).
BOARD_MESSAGES_PER_WINDOW = 5
BOARD_WINDOW_S = 600.0
#: IPs the board limiter remembers at most; the oldest is forgotten first (bounded memory).
BOARD_MAX_TRACKED_IPS = 10_000

#: `wolive_business` enums, exactly as the document's columns.
SWITCH_ENUMS: dict[str, tuple[str, ...]] = {
    "distribution_rule": ("auto", "claim"),
    "video_state": ("close", "open"),
    "audio_state": ("close", "open"),
    "voice_state": ("close", "open"),
    "state": ("close", "open"),
}
SWITCH_FIELDS = ("distribution_rule", "video_state", "audio_state", "voice_state",
                 "voice_address", "state")
#: `voice_address`: a sound file on this server (`/upload/voice/default.mp3` by default);
#: a path, never a URL of another site, so consoles never fetch from elsewhere.
VOICE_ADDRESS_RE = re.compile(r"^/[A-Za-z0-9_\-./]{1,254}\.(?:mp3|wav|ogg|m4a|aac)$")
MOBLIE_RE = re.compile(r"^\+?[0-9][0-9 \-()]{4,30}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]+$")


def _fits(name: str, value: str) -> str:
    if len(value.encode()) > MAX_RICH_BYTES:
        raise ChatError(1, f"{name} is over {MAX_RICH_BYTES} bytes once cleaned", 413)
    return value


# ---- use cases ---------------------------------------------------------------------------

def reopens_service(changes: dict[str, str]) -> bool:
    """Whether switch `changes` may let waiting visitors be served now: the distribution
    rule set to `auto` (from `claim`, they waited for a claim) or the business opened
    (a closed one serves nobody). Either way `Chat.assign_waiting` is due; when the value
    was already so, running it only tells the waiting their places again."""
    return changes.get("distribution_rule") == "auto" or changes.get("state") == "open"


class Content:
    """Greetings, FAQ, tabs, switches and the message board of one server."""

    def __init__(self, store: Store, hub: Hub,
                 clock: Callable[[], float] = time.monotonic,
                 assign_waiting: Callable[[str], Awaitable[int]] | None = None) -> None:
        """`assign_waiting(business_id)`: `realtime.chat.handover.Handover.assign_waiting`, run
        after a switch that makes service possible again (`set_switches`)."""
        self.store = store
        self.hub = hub
        self.assign_waiting = assign_waiting
        #: Replaced by a cluster-wide limiter with several nodes (wolive.make_app).
        self.board_limiter: RateLimiter | Any = RateLimiter(
            BOARD_MESSAGES_PER_WINDOW, BOARD_WINDOW_S, BOARD_MAX_TRACKED_IPS, clock)

    async def business(self, business_id: str) -> dict[str, Any]:
        """The business row; `ChatError` 400 for a malformed id, 404 for an unknown one."""
        if not BUSINESS_ID_RE.match(business_id or ""):
            raise ChatError(1, "business_id must be 1-100 letters, digits or _-.", 400)
        try:
            return await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None

    # ---- greetings (wolive_sentence) ----------------------------------------------------

    async def set_greeting(self, agent: Agent, content: str) -> dict[str, Any]:
        """`/admin/manager/cmtalk`: the agent's own greeting, turned on. Plain text."""
        content = (content or "").strip()
        if not content:
            raise ChatError(1, "content is empty / 请输入问候语", 400)
        if len(content) > MAX_GREETING_CHARS:
            raise ChatError(1, f"content is over {MAX_GREETING_CHARS} characters", 413)
        return await self.store.save_greeting(agent.service_id, content)

    async def greeting(self, agent: Agent) -> dict[str, Any] | None:
        return await self.store.greeting_row(agent.service_id)

    async def greetings(self, agent: Agent, business_id: str) -> list[dict[str, Any]]:
        """A service agent sees its own greeting; a manager every agent's of the business."""
        if agent.level == "service":
            row = await self.store.greeting_row(agent.service_id)
            if row is None:
                return []
            row["nick_name"] = agent.nick_name
            return [row]
        return await self.store.business_greetings(business_id)

    async def set_greeting_state(self, agent: Agent, state: str,
                                 service_id: int | None = None) -> dict[str, Any]:
        """Turn a greeting on (`using`) or off (`unuse`): the caller's own, or, for a
        manager, an agent's of a business it may manage. 403 / 404 otherwise."""
        if state not in ("using", "unuse"):
            raise ChatError(1, "state must be using or unuse", 400)
        target = service_id or agent.service_id
        if target != agent.service_id:
            if agent.level == "service":
                raise ChatError(1, "needs level manager / 权限不足", 403)
            try:
                other = await self.store.get_service(target)
            except NotFound:
                raise ChatError(1, "no such agent", 404) from None
            reason = why_not_act_on(agent, other)
            if reason:
                raise ChatError(1, reason, 403)
        try:
            return await self.store.set_greeting_state(target, state)
        except NotFound:
            raise ChatError(1, "this agent has no greeting yet", 404) from None

    # ---- FAQ (wolive_question) ----------------------------------------------------------

    async def save_question(self, business_id: str, qid: int | None, question: str,
                            answer: str, answer_read: str = "") -> dict[str, Any]:
        """`/admin/manager/addquestion`: add (no `qid`) or edit a question of the business.
        `answer` is sanitised (only the clean HTML is stored); `answer_read` is its plain
        text, derived from the clean HTML when empty. Raises `ChatError` 400/404/409/413."""
        await self.business(business_id)
        question = plain_text(question)
        if not question:
            raise ChatError(1, "question is empty / 请输入问题", 400)
        if len(question) > MAX_QUESTION_CHARS:
            raise ChatError(1, f"question is over {MAX_QUESTION_CHARS} characters", 413)
        html, text = self._rich("answer", answer, answer_read)
        if qid:
            try:
                return await self.store.update_question(business_id, qid, question, html, text)
            except NotFound:
                raise ChatError(1, "no such question in your business", 404) from None
        if await self.store.count_questions(business_id) >= MAX_QUESTIONS_PER_BUSINESS:
            raise ChatError(1, f"at most {MAX_QUESTIONS_PER_BUSINESS} questions", 409)
        return await self.store.add_question(business_id, question, html, text)

    async def questions(self, business_id: str) -> list[dict[str, Any]]:
        """The business's FAQ, oldest first: `[{qid, business_id, question, answer,
        answer_read}]` (`answer` is sanitised HTML). 400/404 for a bad business."""
        await self.business(business_id)
        return await self.store.list_questions(business_id, MAX_QUESTIONS_PER_BUSINESS)

    async def delete_question(self, business_id: str, qid: int) -> None:
        try:
            await self.store.delete_question(business_id, qid)
        except NotFound:
            raise ChatError(1, "no such question in your business", 404) from None

    # ---- tabs (wolive_tablist) ----------------------------------------------------------

    async def save_tab(self, business_id: str, tid: int | None, title: str, content: str,
                       content_read: str = "") -> dict[str, Any]:
        """`/admin/set/gettab`: add (no `tid`) or edit a tab; the same rules as the FAQ."""
        await self.business(business_id)
        title = plain_text(title)
        if not title:
            raise ChatError(1, "title is empty / 请输入标题", 400)
        if len(title) > MAX_TITLE_CHARS:
            raise ChatError(1, f"title is over {MAX_TITLE_CHARS} characters", 413)
        html, text = self._rich("content", content, content_read)
        if tid:
            try:
                return await self.store.update_tab(business_id, tid, title, html, text)
            except NotFound:
                raise ChatError(1, "no such tab in your business", 404) from None
        if await self.store.count_tabs(business_id) >= MAX_TABS_PER_BUSINESS:
            raise ChatError(1, f"at most {MAX_TABS_PER_BUSINESS} tabs", 409)
        return await self.store.add_tab(business_id, title, html, text)

    async def tabs(self, business_id: str) -> list[dict[str, Any]]:
        """The business's tabs: `[{tid, title, content, content_read, business_id}]`."""
        await self.business(business_id)
        return await self.store.list_tabs(business_id, MAX_TABS_PER_BUSINESS)

    async def delete_tab(self, business_id: str, tid: int) -> None:
        try:
            await self.store.delete_tab(business_id, tid)
        except NotFound:
            raise ChatError(1, "no such tab in your business", 404) from None

    @staticmethod
    def _rich(name: str, raw: str, raw_read: str) -> tuple[str, str]:
        """(clean HTML, plain text) of a rich field; 400 when nothing safe is left."""
        html = sanitise_rich(raw)
        text = plain_text(raw_read) if (raw_read or "").strip() else plain_text(html)
        if not text and "<img" not in html:
            raise ChatError(1, f"{name} is empty (or had only unsafe markup)", 400)
        return _fits(name, html), _fits(name + "_read", text)

    # ---- business switches --------------------------------------------------------------

    async def switches(self, business_id: str) -> dict[str, Any]:
        """`{business_id, distribution_rule, video_state, audio_state, voice_state,
        voice_address, state}`; 400/404 for a bad business."""
        row = await self.business(business_id)
        return {k: row[k] for k in ("business_id",) + SWITCH_FIELDS}

    async def set_switches(self, agent: Agent, business_id: str,
                           changes: dict[str, str]) -> dict[str, Any]:
        """Change some switches. Each value is checked against the document's enum (or, for
        `voice_address`, `VOICE_ADDRESS_RE`); `state` (open / close the whole business, the
        document's "禁止该商户") only a super_manager may change. 400/403/404.

        A change that may let waiting visitors be served (`distribution_rule` set to `auto`,
        `state` set to `open`) runs `assign_waiting` once it is stored: under `auto` the
        waiting go to online agents with room at once (queue order, the cap), and every
        window still waiting is told its place."""
        await self.business(business_id)
        if not changes:
            raise ChatError(1, "nothing to change: send one of " + ", ".join(SWITCH_FIELDS),
                            400)
        for key, value in changes.items():
            if key == "voice_address":
                if not VOICE_ADDRESS_RE.match(value) or "/." in value or "//" in value:
                    raise ChatError(1, "voice_address must be a sound file's path on this "
                                       "server, e.g. /upload/voice/default.mp3", 400)
            elif value not in SWITCH_ENUMS[key]:
                raise ChatError(1, f"{key} must be one of {', '.join(SWITCH_ENUMS[key])}", 400)
        if "state" in changes and agent.level != "super_manager":
            raise ChatError(1, "only a super_manager may open or close a business", 403)
        row = await self.store.set_switches(business_id, changes)
        if reopens_service(changes) and self.assign_waiting is not None:
            await self.assign_waiting(business_id)
        return {k: row[k] for k in ("business_id",) + SWITCH_FIELDS}

    # ---- message board (wolive_message) ------------------------------------------------

    async def leave_message(self, business_id: str, name: str, moblie: str, email: str,
                            content: str, ip: str) -> dict[str, Any]:
        """A visitor's message when nobody is online (`/admin/event/message`). Needs a name,
        the message, and a phone number (`moblie`, the document's spelling) or an email.
        Stored as plain text, then pushed to `all{business_id}` `new_message`. Raises
        `ChatError`: 400 bad field, 403 business closed, 404 unknown business, 413 too
        long, 429 over `BOARD_MESSAGES_PER_WINDOW` from one IP."""
        business = await self.business(business_id)
        if business["state"] == "close":
            raise ChatError(1, "该网站已经停止客服咨询！", 403)
        name, moblie, email = (name or "").strip(), (moblie or "").strip(), \
            (email or "").strip()
        content = (content or "").strip()
        if not name:
            raise ChatError(1, "name is empty / 请输入姓名", 400)
        if len(name) > MAX_BOARD_NAME_CHARS:
            raise ChatError(1, f"name is over {MAX_BOARD_NAME_CHARS} characters", 400)
        if not moblie and not email:
            raise ChatError(1, "leave a phone number or an email / 请留下电话或邮箱", 400)
        if moblie and not MOBLIE_RE.match(moblie):
            raise ChatError(1, "moblie is not a phone number / 电话号码格式不正确", 400)
        if email and (len(email) > MAX_EMAIL_CHARS or not EMAIL_RE.match(email)):
            raise ChatError(1, "email is not an email address / 邮箱格式不正确", 400)
        if not content:
            raise ChatError(1, "content is empty / 请输入留言内容", 400)
        if len(content) > MAX_BOARD_CONTENT_CHARS:
            raise ChatError(1, f"content is over {MAX_BOARD_CONTENT_CHARS} characters", 413)
        if not await self.board_limiter.allow(ip or "?"):
            raise ChatError(1, "too many messages; please try again later / 留言过于频繁", 429)
        row = await self.store.add_board_message(business_id, name, moblie, email, content)
        self.hub.trigger(channels.business(business_id), "new_message", {"message": row})
        return row

    async def messages(self, business_id: str, page: int, limit: int) -> dict[str, Any]:
        """One page of the business's messages, newest first, plus `unread` (all pages)."""
        offset, limit = check_page(page, limit)
        rows, total = await self.store.board_messages(business_id, offset, limit)
        out = page_of(rows, total, page, limit)
        out["unread"] = await self.store.unread_board_messages(business_id)
        return out

    async def mark_message(self, business_id: str, mid: int, state: str = "readed"
                           ) -> dict[str, Any]:
        if state not in ("readed", "unread"):
            raise ChatError(1, "state must be readed or unread", 400)
        try:
            return await self.store.set_board_message_state(business_id, mid, state)
        except NotFound:
            raise ChatError(1, "no such message in your business", 404) from None

    async def delete_message(self, business_id: str, mid: int) -> None:
        try:
            await self.store.delete_board_message(business_id, mid)
        except NotFound:
            raise ChatError(1, "no such message in your business", 404) from None
