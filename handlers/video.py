"""Video calls (WoLive document: `video` / `video-refuse` on `kefu{id}` and `cu{channel}`).

Visitor side (proves itself with `channel`, as every `/admin/event/...` URL):
`/admin/event/video`, `/admin/event/refuse`, `/admin/event/videoauth`.
Console side (logged-in agent, `_xsrf` on POST): `/admin/set/video`, `/admin/set/refuse`,
`/admin/set/videoauth`. The use cases are `realtime.chat.video.Video`'s.
"""
from __future__ import annotations

import json
from typing import cast

from realtime.pusher import protocol as p
from realtime.pusher.http_api import SOCKET_ID_RE
from realtime.chat.video import CALL_PREFIX, Party, VisitorParty

from .base import AgentApiHandler, ApiError, BaseHandler, VisitorApiHandler
from .visitor import VisitorMixin


class VideoMixin(BaseHandler):
    def visitor_ids(self) -> tuple[str, str, str]:
        """(visiter_id, business_id, channel) of a visitor-side call."""
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        return visiter_id, business_id, cast(VisitorMixin, self).visitor_channel_arg(
            business_id, visiter_id)

    async def sign_call(self, party: Party) -> None:
        """Answer pusher-js's channel authorization request (form `socket_id`,
        `channel_name`) for a call channel `party` may join: `{"auth": "key:signature"}`.
        403 JSON for anyone else, 400 for a malformed request."""
        socket_id = self.arg("socket_id", required=True, max_len=64)
        channel = self.arg("channel_name", required=True, max_len=p.MAX_CHANNEL_NAME)
        if not SOCKET_ID_RE.match(socket_id):
            raise ApiError(400, 1, "socket_id must look like 123.456")
        if not channel.startswith(CALL_PREFIX) or not p.valid_channel_name(channel):
            raise ApiError(400, 1, f"channel_name must be a {CALL_PREFIX}... channel")
        if not await self.video.may_join_call(channel, party):
            raise ApiError(403, 1, "not your call, or it has ended / 无权加入该视频通话")
        answer = self.hub.authorize_channel(self.hub.default_app, socket_id, channel)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer))


class VisitorVideoHandler(VisitorApiHandler, VisitorMixin, VideoMixin):
    """`POST /admin/event/video` (`visiter_id`, `business_id`, `channel`): ask the visitor's
    agent for a video call. `{code: 0, msg: "", data: {call, service_id, ice_servers}}`;
    code 2 (403) when the business's video is off, 3 (403/404/409) as `/admin/event/chats`,
    4 (403) blacklisted."""

    async def post(self) -> None:
        data = await self.video.visitor_asks(*self.visitor_ids())
        self.answer(0, "", data)


class VisitorRefuseHandler(VisitorApiHandler, VisitorMixin, VideoMixin):
    """`POST /admin/event/refuse` (`visiter_id`, `business_id`, `channel`, `call`): the
    visitor turns a call down or hangs up; pushes `kefu{agent}` `video-refuse`."""

    async def post(self) -> None:
        visiter_id, business_id, channel = self.visitor_ids()
        await self.video.visitor_refuses(visiter_id, business_id, channel,
                                         self.arg("call", max_len=p.MAX_CHANNEL_NAME))
        self.answer(0, "success")


class VisitorCallAuthHandler(VisitorApiHandler, VisitorMixin, VideoMixin):
    """`POST /admin/event/videoauth`: pusher-js `channelAuthorization` for the visitor's
    call channel (form `socket_id`, `channel_name`, plus `visiter_id`, `business_id`,
    `channel` as `params`)."""

    async def post(self) -> None:
        visiter_id, business_id, channel = self.visitor_ids()
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        await self.sign_call(VisitorParty(business_id, visiter_id))


class AgentVideoHandler(AgentApiHandler, VideoMixin):
    """`POST /admin/set/video` (`visiter_id`): ask the visitor for a video call.
    `{code: 0, msg: "", data: {call, visiter_id, ice_servers}}`; code 2 (403) when the
    business's video is off; 404 / 403 as `/admin/set/chats`."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        self.answer(0, "", await self.video.agent_asks(self.agent, visiter_id))


class AgentRefuseHandler(AgentApiHandler, VideoMixin):
    """`POST /admin/set/refuse` (`visiter_id`, `call`): the agent turns a call down or
    hangs up; pushes `cu{channel}` `video-refuse`."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        await self.video.agent_refuses(self.agent, visiter_id,
                                       self.arg("call", max_len=p.MAX_CHANNEL_NAME))
        self.answer(0, "success")


class AgentCallAuthHandler(AgentApiHandler, VideoMixin):
    """`POST /admin/set/videoauth`: pusher-js `channelAuthorization` for the agent's call
    channel (form `socket_id`, `channel_name`; cookie and `_xsrf` header)."""

    async def post(self) -> None:
        await self.sign_call(self.agent)


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/event/video", VisitorVideoHandler),
        (r"/admin/event/refuse", VisitorRefuseHandler),
        (r"/admin/event/videoauth", VisitorCallAuthHandler),
        (r"/admin/set/video", AgentVideoHandler),
        (r"/admin/set/refuse", AgentRefuseHandler),
        (r"/admin/set/videoauth", AgentCallAuthHandler),
    ]
