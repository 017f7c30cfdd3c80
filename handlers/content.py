"""Greetings, FAQ, visitor-side tabs, business switches and the message board.

WoLive document: "问候语添加Api" (`/admin/manager/cmtalk`), "添加常用问题"
(`/admin/manager/addquestion`), "添加tab的编辑面版" (`/admin/set/gettab`), the
`wolive_business` switches and `wolive_message`; the other URLs here are the lists, toggles
and deletes the original WoLive console had around them. Use cases and rules live in
realtime/chat/content.py; this module parses, checks who is calling (level, business) and
answers.
"""
from __future__ import annotations

from typing import Any, cast

from realtime.chat.errors import ChatError
from realtime.chat.content import (
    MAX_BOARD_CONTENT_CHARS,
    MAX_EMAIL_CHARS,
    SWITCH_FIELDS,
)
from realtime.chat.paging import DEFAULT_PAGE_LIMIT

from .base import AgentApiHandler, ApiError, BaseHandler, VisitorApiHandler
from .visitor import VisitorMixin

#: Longest raw rich body a request may send (characters), before it is sanitised.
MAX_RICH_INPUT_CHARS = 200_000
#: Longest raw plain-text field (characters); the use cases apply the real limits.
MAX_TEXT_INPUT_CHARS = 10_000


class ContentMixin(BaseHandler):
    """Typed access to the `Content` use cases, and the small argument helpers."""

    def id_arg(self, name: str, required: bool = True) -> int | None:
        """A row id: a whole number ≥ 1; `ApiError` 400 when required and missing."""
        value = self.int_arg(name, 0)
        if value < 0 or (required and value == 0):
            raise ApiError(400, 1, f"missing parameter: {name}")
        return value or None

    def page_args(self) -> tuple[int, int]:
        return self.int_arg("page", 1), self.int_arg("limit", DEFAULT_PAGE_LIMIT)


class ContentApiHandler(AgentApiHandler, ContentMixin):
    """A console URL scoped to one business: the caller's, or for a super_manager the one
    named by `business_id` (no agent touches another business's data)."""

    def scoped_business(self, level: str = "service") -> str:
        agent = self.require_level(level)
        business_id = self.arg("business_id", max_len=100) or agent.business_id
        self.require_business(business_id)
        return business_id


# ---- greetings ---------------------------------------------------------------------------

class GreetingHandler(ContentApiHandler):
    """`/admin/manager/cmtalk`: GET the caller's greeting (or null); POST `content` sets it
    and turns it on → `{code: 0, msg: "成功", data: {sid, service_id, content, state}}`."""

    async def get(self) -> None:
        self.answer(0, "", await self.content.greeting(self.agent))

    async def post(self) -> None:
        content = self.arg("content", required=True, max_len=MAX_TEXT_INPUT_CHARS)
        self.answer(0, "成功", await self.content.set_greeting(self.agent, content))


class GreetingsHandler(ContentApiHandler):
    """`/admin/manager/greetings`: a service agent's own greeting; a manager's business's
    (a super_manager's: `business_id`'s) greetings with each agent's `nick_name`."""

    async def get(self) -> None:
        business_id = self.scoped_business()
        self.answer(0, "", await self.content.greetings(self.agent, business_id))

    post = get


class GreetingStateHandler(ContentApiHandler):
    """`/admin/manager/greetingstate`: POST `state` = using | unuse turns a greeting on or
    off; the caller's own, or (manager and up) `service_id`'s in its business."""

    async def post(self) -> None:
        state = self.arg("state", required=True, max_len=10)
        row = await self.content.set_greeting_state(self.agent, state,
                                                    self.id_arg("service_id", required=False))
        self.answer(0, "成功", row)


# ---- FAQ -------------------------------------------------------------------------------

class AddQuestionHandler(ContentApiHandler):
    """`/admin/manager/addquestion`: `question`, `answer` (rich: sanitised), `answer_read`
    (plain; derived when empty), `qid` (present = edit). Manager and up."""

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        row = await self.content.save_question(
            business_id, self.id_arg("qid", required=False),
            self.arg("question", required=True, max_len=MAX_TEXT_INPUT_CHARS),
            self.arg("answer", required=True, max_len=MAX_RICH_INPUT_CHARS),
            self.arg("answer_read", max_len=MAX_RICH_INPUT_CHARS))
        self.answer(0, "成功", row)


class QuestionsHandler(ContentApiHandler):
    """`/admin/manager/questions`: the business's FAQ. Manager and up."""

    async def get(self) -> None:
        self.answer(0, "", await self.content.questions(self.scoped_business("manager")))

    post = get


class DelQuestionHandler(ContentApiHandler):
    """`/admin/manager/delquestion`: POST `qid`. Manager and up; its business's only."""

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        await self.content.delete_question(business_id, cast(int, self.id_arg("qid")))
        self.answer(0, "成功")


# ---- tabs --------------------------------------------------------------------------------

class GetTabHandler(ContentApiHandler):
    """`/admin/set/gettab`: `title`, `content` (rich: sanitised), `content_read` (plain;
    derived when empty), `tid` (present = edit). Manager and up."""

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        row = await self.content.save_tab(
            business_id, self.id_arg("tid", required=False),
            self.arg("title", required=True, max_len=MAX_TEXT_INPUT_CHARS),
            self.arg("content", required=True, max_len=MAX_RICH_INPUT_CHARS),
            self.arg("content_read", max_len=MAX_RICH_INPUT_CHARS))
        self.answer(0, "成功", row)


class TabsHandler(ContentApiHandler):
    """`/admin/set/tabs`: the business's tabs. Manager and up."""

    async def get(self) -> None:
        self.answer(0, "", await self.content.tabs(self.scoped_business("manager")))

    post = get


class DelTabHandler(ContentApiHandler):
    """`/admin/set/deltab`: POST `tid`. Manager and up; its business's only."""

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        await self.content.delete_tab(business_id, cast(int, self.id_arg("tid")))
        self.answer(0, "成功")


class VisitorQuestionsHandler(VisitorApiHandler, ContentMixin):
    """`/admin/event/questions?business_id=`: the business's FAQ for the visitor window
    (public content: no login). `answer` is sanitised HTML, `answer_read` plain text."""

    async def get(self) -> None:
        business_id = self.arg("business_id", required=True, max_len=100)
        rows = await self.content.questions(business_id)
        self.answer(0, "", [{k: r[k] for k in ("qid", "question", "answer", "answer_read")}
                            for r in rows])

    post = get


class VisitorTabsHandler(VisitorApiHandler, ContentMixin):
    """`/admin/event/tabs?business_id=`: the business's tabs for the visitor window."""

    async def get(self) -> None:
        business_id = self.arg("business_id", required=True, max_len=100)
        rows = await self.content.tabs(business_id)
        self.answer(0, "", [{k: r[k] for k in ("tid", "title", "content", "content_read")}
                            for r in rows])

    post = get


# ---- business switches -------------------------------------------------------------------

class SwitchesHandler(ContentApiHandler):
    """`/admin/manager/switches`: GET the business's `distribution_rule, video_state,
    audio_state, voice_state, voice_address, state`; POST any of them. Manager (its
    business) or super_manager (`business_id`); `state` super_manager only."""

    async def get(self) -> None:
        self.answer(0, "", await self.content.switches(self.scoped_business("manager")))

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        sent = self.body_args()
        changes = {k: self.arg(k, max_len=255) for k in SWITCH_FIELDS if k in sent}
        self.answer(0, "成功", await self.content.set_switches(self.agent, business_id,
                                                              changes))


# ---- message board -----------------------------------------------------------------------

BOARD_FIELDS = ("name", "moblie", "email", "content")


class BoardInput(BaseHandler):
    def board_form(self) -> dict[str, str]:
        limits = {"name": 255, "moblie": 255, "email": MAX_EMAIL_CHARS * 2,
                  "content": MAX_BOARD_CONTENT_CHARS * 2}
        return {k: self.arg(k, max_len=limits[k]) for k in BOARD_FIELDS}


class LeaveMessageHandler(VisitorApiHandler, ContentMixin, BoardInput, VisitorMixin):
    """`/admin/event/message`: POST `name`, `moblie` (sic), `email`, `content`,
    `business_id` → `{code: 0, msg: "success", data: {mid}}`; pushes `all{business_id}`
    `new_message`. No login; at most 5 per IP in 10 minutes (429).

    Optional `visiter_id` (+ `channel`, or the window's cookie): the chat window's visitor,
    who then stops waiting for an agent (`Chat.leave_waiting`, reason "message"); a
    `channel` that does not match answers code 3 (403) and stores nothing."""

    async def post(self) -> None:
        business_id = self.arg("business_id", required=True, max_len=100)
        visiter_id = self.arg("visiter_id", max_len=200)
        if visiter_id:
            self.chat.check_ids(visiter_id, business_id)
            self.chat.check_visitor(business_id, visiter_id,
                                    self.visitor_channel_arg(business_id, visiter_id))
        row = await self.content.leave_message(business_id, ip=self.client_ip(),
                                               **self.board_form())
        if visiter_id:
            await self.chat.leave_waiting(visiter_id, business_id, "message")
        self.answer(0, "success", {"mid": row["mid"]})


class MessagePageHandler(ContentMixin, BoardInput):
    """`/index/index/message?business_id=`: the leave-a-message page shown when nobody is
    online. GET renders the form (`visiter_name` pre-fills the name); POST (the form, with
    `_xsrf`) saves it and renders the result. Everything is rendered autoescaped."""

    html_errors = True

    async def business_or_404(self, business_id: str) -> dict[str, Any]:
        try:
            return await self.content.business(business_id)
        except ChatError as exc:
            raise ApiError(exc.status, exc.code, exc.msg) from None

    async def get(self) -> None:
        business_id = self.get_query_argument("business_id", "")[:100]
        await self.business_or_404(business_id)
        form = {k: "" for k in BOARD_FIELDS}
        form["name"] = self.get_query_argument("visiter_name", "")[:64]
        self.render("message.html", business_id=business_id, form=form, error="", done=False)

    async def post(self) -> None:
        business_id = self.get_body_argument("business_id", "")[:100]
        await self.business_or_404(business_id)
        form = {k: self.get_body_argument(k, "")[:MAX_BOARD_CONTENT_CHARS * 2]
                for k in BOARD_FIELDS}
        try:
            await self.content.leave_message(business_id, ip=self.client_ip(), **form)
        except ChatError as exc:
            self.set_status(exc.status)
            self.render("message.html", business_id=business_id, form=form, error=exc.msg,
                        done=False)
            return
        self.render("message.html", business_id=business_id, form=form, error="", done=True)


class MessagesHandler(ContentApiHandler):
    """`/admin/set/messages`: the business's messages, newest first, paged (`page`,
    `limit` ≤ 100) → `{rows, total, page, limit, unread}`. Any agent of the business."""

    async def get(self) -> None:
        business_id = self.scoped_business()
        page, limit = self.page_args()
        self.answer(0, "", await self.content.messages(business_id, page, limit))

    post = get


class ReadMessageHandler(ContentApiHandler):
    """`/admin/set/readmessage`: POST `mid` (and `state` readed | unread, default readed)."""

    async def post(self) -> None:
        business_id = self.scoped_business()
        row = await self.content.mark_message(business_id, cast(int, self.id_arg("mid")),
                                              self.arg("state", "readed", max_len=10))
        self.answer(0, "success", row)


class DelMessageHandler(ContentApiHandler):
    """`/admin/set/delmessage`: POST `mid`. Manager and up; its business's only."""

    async def post(self) -> None:
        business_id = self.scoped_business("manager")
        await self.content.delete_message(business_id, cast(int, self.id_arg("mid")))
        self.answer(0, "success")


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/manager/cmtalk", GreetingHandler),
        (r"/admin/manager/greetings", GreetingsHandler),
        (r"/admin/manager/greetingstate", GreetingStateHandler),
        (r"/admin/manager/addquestion", AddQuestionHandler),
        (r"/admin/manager/questions", QuestionsHandler),
        (r"/admin/manager/delquestion", DelQuestionHandler),
        (r"/admin/manager/switches", SwitchesHandler),
        (r"/admin/set/gettab", GetTabHandler),
        (r"/admin/set/tabs", TabsHandler),
        (r"/admin/set/deltab", DelTabHandler),
        (r"/admin/set/messages", MessagesHandler),
        (r"/admin/set/readmessage", ReadMessageHandler),
        (r"/admin/set/delmessage", DelMessageHandler),
        (r"/admin/event/questions", VisitorQuestionsHandler),
        (r"/admin/event/tabs", VisitorTabsHandler),
        (r"/admin/event/message", LeaveMessageHandler),
        (r"/index/index/message", MessagePageHandler),
    ]
