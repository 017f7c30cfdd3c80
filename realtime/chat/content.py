"""Content use cases: greetings, FAQ, visitor-side tabs, business switches, the message
board, and conversation history.

Sources of the rules: the WoLive document ("问候语添加Api", "添加常用问题", "添加tab的编辑面版",
"查看历史消息Api", the `wolive_business` / `wolive_message` columns) and WOLIVE-NOTES
("Flaws of the original": stored XSS, cross-business access, mass assignment).

Rich content (FAQ answers, tab bodies) is sanitised here with nh3 (the Ammonia HTML
sanitiser) before it is stored, and only the sanitised HTML is stored; everything else
(greetings, questions, titles, board messages) is plain text that clients render as text.
Use cases raise `ChatError(code, msg, status)`; handlers render it (handlers/base.py).
Level checks (manager, super_manager) are the handlers'; which rows a caller may see is
decided here, from the `Agent` and the business it is scoped to.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import nh3

from store import NotFound, Store
from store.ratings import RATING_FIELDS

from . import channels
from .agents import why_not_act_on
from .errors import ChatError
from .values import BUSINESS_ID_RE, Agent
from ..pusher.hub import Hub

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
#: Largest page of a paged list (rows); the document's lists are for a console screen.
MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 20
#: `getviews` `puttime`: how far back "the last week" / "the last month" reach (seconds).
PUTTIME_SPANS_S = {"week": 7 * 86_400, "month": 30 * 86_400}

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
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

# ---- rich text ---------------------------------------------------------------------------

#: Basic formatting, links and images; nothing that runs, embeds or styles.
RICH_TAGS = frozenset({
    "p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "del", "sub", "sup",
    "ul", "ol", "li", "blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "a", "img",
})
RICH_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
#: Dropped together with everything inside them (not just their tags).
RICH_DROP_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "noscript", "noembed", "template",
    "textarea", "select", "title", "svg", "math", "frame", "frameset", "xmp", "applet",
})
LINK_REL = "noopener noreferrer nofollow"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_LINK_RE = re.compile(r"^(?:https?://[^/?#]|mailto:[^/])", re.IGNORECASE)
_IMAGE_RE = re.compile(r"^(?:https?://[^/?#]|/(?![/]))", re.IGNORECASE)
_BLOCK_TAGS = frozenset({"p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5",
                         "h6", "hr", "ul", "ol", "tr"})


def _rich_attribute(tag: str, attr: str, value: str) -> str | None:
    """nh3 attribute filter: links http/https/mailto only; images http/https or a path on
    this server (never `//host`, which is another site); sizes are small whole numbers."""
    if tag == "a" and attr == "href":
        ok = not _UNSAFE_URL_CHARS.search(value) and _LINK_RE.match(value)
        return value if ok else None
    if tag == "img" and attr == "src":
        ok = not _UNSAFE_URL_CHARS.search(value) and _IMAGE_RE.match(value)
        return value if ok else None
    if tag == "img" and attr in ("width", "height"):
        return value if value.isdigit() and len(value) <= 4 else None
    return value


def sanitise_rich(html: str) -> str:
    """The safe subset of `html`: `RICH_TAGS` with `RICH_ATTRIBUTES`, links rel="noopener
    noreferrer nofollow", no scripts, event handlers, styles, frames or `javascript:`."""
    return nh3.clean(html or "", tags=set(RICH_TAGS), attributes=RICH_ATTRIBUTES,
                     attribute_filter=_rich_attribute, link_rel=LINK_REL,
                     url_schemes=set(LINK_SCHEMES),
                     clean_content_tags=set(RICH_DROP_WITH_CONTENT),
                     strip_comments=True).strip()


class _TextOf(HTMLParser):
    """Text of a (sanitised) HTML fragment; block ends and `<br>` become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str) -> str:
    """Plain text of `html` (markup removed, entities decoded, blank lines collapsed). Any
    markup in the input is dropped first by nh3, so the result never carries a tag."""
    parser = _TextOf()
    parser.feed(nh3.clean(html or "", tags=set(RICH_TAGS), attributes={"img": {"alt"}},
                          clean_content_tags=set(RICH_DROP_WITH_CONTENT)))
    parser.close()
    lines = [ln.strip() for ln in "".join(parser.parts).splitlines()]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()


def _fits(name: str, value: str) -> str:
    if len(value.encode()) > MAX_RICH_BYTES:
        raise ChatError(1, f"{name} is over {MAX_RICH_BYTES} bytes once cleaned", 413)
    return value


# ---- the message board limiter ---------------------------------------------------------

class RateLimiter:
    """At most `limit` hits per key in any `window_s` seconds (sliding window), remembering
    at most `max_keys` keys. In-process; with several nodes `realtime.pusher.redis_adapter`'s
    `RedisRateLimiter` (the same `allow`) counts for the cluster."""

    def __init__(self, limit: int, window_s: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self.hits: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, key: str) -> bool:
        """Count one hit for `key`; False (not counted) when it is over the limit."""
        now = self.clock()
        q = self.hits.get(key)
        if q is None:
            q = self.hits[key] = deque()
            while len(self.hits) > self.max_keys:
                self.hits.popitem(last=False)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        self.hits.move_to_end(key)
        return True

    async def allow(self, key: str) -> bool:
        """`take`, as every limiter answers (one on Redis after a round trip)."""
        return self.take(key)


# ---- paging ------------------------------------------------------------------------------

def page_of(rows: list[dict[str, Any]], total: int, page: int, limit: int) -> dict[str, Any]:
    """The answer shape of every paged list: `{rows, total, page, limit}`."""
    return {"rows": rows, "total": total, "page": page, "limit": limit}


def check_page(page: int, limit: int) -> tuple[int, int]:
    """`page` ≥ 1 and 1 ≤ `limit` ≤ `MAX_PAGE_LIMIT`; returns (offset, limit). 400 else."""
    if page < 1:
        raise ChatError(1, "page starts at 1", 400)
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ChatError(1, f"limit must be 1-{MAX_PAGE_LIMIT}", 400)
    return (page - 1) * limit, limit


def _local_ts(d: datetime) -> int:
    return int(d.timestamp())


def parse_when(name: str, raw: str, end: bool = False) -> int:
    """`YYYY-MM-DD` (the server's local day; the end of that day when `end`) or unix seconds.
    Raises `ChatError` 400 naming the parameter."""
    raw = (raw or "").strip()
    if not raw:
        raise ChatError(1, f"missing parameter: {name}", 400)
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    if DATE_RE.match(raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            raise ChatError(1, f"{name}: no such date {raw!r}", 400) from None
        if not 1970 <= day.year <= 9998:  # what a timestamp holds, in any time zone
            raise ChatError(1, f"{name}: date {raw!r} out of range (1970-9998)", 400)
        if end:
            return _local_ts(day + timedelta(days=1)) - 1
        return _local_ts(day)
    raise ChatError(1, f"{name} must be a date YYYY-MM-DD or unix seconds", 400)


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


class History:
    """Conversation history (WoLive document, "查看历史消息Api"). A service agent sees only
    its own conversations; a manager its business's; a super_manager the business it
    names (or any, when it names none: `business_id` None). Visitors are found by `channel`
    within that business only."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def visitors(self, agent: Agent, business_id: str | None, nick_name: str,
                       service_id: int, page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getvisiters`: the visitors the agent named by `nick_name` (the
        document's `service`) or `service_id` talked with; the caller by default. A service
        agent may only ask about itself (403). 404 no such agent in the business; 409 the
        nick name is shared (ask by `service_id`). `business_id` None (a super_manager who
        named none): the named agent's business, else the caller's."""
        offset, limit = check_page(page, limit)
        target, business_id = await self._target_agent(agent, business_id, nick_name,
                                                       service_id)
        rows, total = await self.store.visitors_of_service(business_id, target, offset,
                                                           limit)
        out = page_of(rows, total, page, limit)
        out.update(service_id=target, business_id=business_id)
        return out

    async def search(self, agent: Agent, business_id: str, text: str, who: str,
                     service_id: int, start: str, end: str, page: int,
                     limit: int) -> dict[str, Any]:
        """`/admin/set/searchhistory`: the visitors whose messages in `business_id` (already
        checked for the caller) match `text` (within a message), `who` (within the visitor's
        name or id) and `service_id` (0: any agent), between `start` and `end` (YYYY-MM-DD or
        unix seconds, inclusive; either may be empty), most recent first:
        `{rows, total, page, limit}` (rows: `HistoryStore.search_conversations`). A service
        agent only ever searches its own conversations. Raises `ChatError` 400, 404 for a
        `service_id` that is no agent of `business_id`."""
        offset, limit = check_page(page, limit)
        if agent.level == "service":
            service_id = agent.service_id
        elif service_id:
            # An agent of another business (or none) is not found, as everywhere else.
            await self._target_agent(agent, business_id, "", service_id)
        since = parse_when("start", start) if start.strip() else 0
        until = parse_when("end", end, end=True) if end.strip() else 2 ** 31 - 1
        if since > until:
            raise ChatError(1, "start is after end", 400)
        rows, total = await self.store.search_conversations(
            business_id, since, until, service_id, text.strip(), who.strip(), offset, limit)
        return page_of(rows, total, page, limit)

    async def _target_agent(self, agent: Agent, business_id: str | None, nick_name: str,
                            service_id: int) -> tuple[int, str]:
        """(service_id, business_id) of the agent asked about; see `visitors`."""
        if service_id:
            try:
                row = await self.store.get_service(service_id)
            except NotFound:
                raise ChatError(1, "no such agent in your business", 404) from None
            if business_id is None:
                business_id = row["business_id"]
            elif row["business_id"] != business_id:
                raise ChatError(1, "no such agent in your business", 404)
            target = service_id
        else:
            business_id = business_id or agent.business_id
            if not nick_name or (business_id == agent.business_id and
                                 nick_name == agent.nick_name):
                target = agent.service_id
            else:
                ids = [r["service_id"] for r in
                       await self.store.services_by_nick(business_id, nick_name)]
                if not ids:
                    raise ChatError(1, "no such agent in your business", 404)
                if agent.level == "service" and agent.service_id in ids:
                    target = agent.service_id
                elif agent.level != "service" and len(ids) > 1:
                    raise ChatError(1, "several agents have this nick_name: ask by "
                                       "service_id", 409)
                else:
                    target = ids[0]
        if agent.level == "service" and target != agent.service_id:
            raise ChatError(1, "a service agent sees only its own visitors / 权限不足", 403)
        return target, business_id

    async def views(self, agent: Agent, business_id: str | None, channel: str, puttime: str,
                    page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getviews`: the conversation with the visitor of `channel` in the last
        week (`puttime=week`, 7 days) or month (`month`, 30 days), oldest first; `ratings`:
        the visitor's ratings given in the span (a service agent: of its own conversations)."""
        span = PUTTIME_SPANS_S.get((puttime or "").strip())
        if span is None:
            raise ChatError(1, "puttime must be week or month", 400)
        now = int(self.clock())
        return await self._conversation(agent, business_id, channel, now - span, now, page,
                                        limit)

    async def views_between(self, agent: Agent, business_id: str | None, channel: str, start: str,
                            end: str, page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getdesignForViews`: the conversation between `start` and `end`
        (dates `YYYY-MM-DD` in the server's time zone, or unix seconds; `end` inclusive:
        a date means the whole of that day). 400 for a bad date or `start` after `end`."""
        since = parse_when("start", start)
        until = parse_when("end", end, end=True)
        if since > until:
            raise ChatError(1, "start is after end", 400)
        return await self._conversation(agent, business_id, channel, since, until, page,
                                        limit)

    async def _conversation(self, agent: Agent, business_id: str | None, channel: str, since: int,
                            until: int, page: int, limit: int) -> dict[str, Any]:
        offset, limit = check_page(page, limit)
        channel = (channel or "").strip()
        if not channel:
            raise ChatError(1, "missing parameter: channel", 400)
        visitor = await self.store.find_visiter_by_channel(channel)
        if visitor is None or business_id not in (None, visitor["business_id"]):
            raise ChatError(1, "no such visitor in your business", 404)
        business_id = visitor["business_id"]
        only: int | None = None
        if agent.level == "service":
            only = agent.service_id
            if not await self.store.has_chatted(business_id, visitor["visiter_id"], only):
                raise ChatError(1, "not your visitor: you never talked with it", 403)
        # The whole transcript, as the workbench shows it: an agent who took the visitor
        # over (a transfer, a hand-over) reads what was said before it came, too.
        rows, total = await self.store.chats_between(
            business_id, visitor["visiter_id"], since, until, offset, limit)
        out = page_of(rows, total, page, limit)
        out.update(visiter_id=visitor["visiter_id"], visiter_name=visitor["visiter_name"],
                   avatar=visitor["avatar"], start=since, end=until)
        # The visitor's ratings given in the span (issue 9), oldest first.
        out["ratings"] = [{k: r[k] for k in RATING_FIELDS} for r in
                          await self.store.ratings_between(business_id, visitor["visiter_id"],
                                                           since, until, service_id=only)]
        return out
