"""Agent management (`/admin/manager/...`, WoLive document "客服管理Api"), the
super_manager's businesses (`/admin/business/...`) and the agent's own available / away
status (`/admin/set/status`; the rule and events: `realtime.chat.agent_status`).

Thin: read the documented parameters (and only those: no mass assignment), check the
caller's level and business, check new passwords (`realtime.passwords`), call
`realtime.chat.agents.Agents` (built once by `wolive.make_app`), answer
`{code: 0, msg: "成功"}` or `{code: 1, msg}` with a 4xx status. The rules themselves live in
`realtime/chat/agents.py`.
"""
from __future__ import annotations

from realtime.chat.agents import Profile
from realtime.passwords import PasswordRefused, check_new_password

from .base import AgentApiHandler, ApiError

#: Longest password text read before the bcrypt rule (72 bytes) refuses it properly.
MAX_PASSWORD_ARG = 200
OK = "成功"


class ManagerHandler(AgentApiHandler):
    """Agent and business management: the use cases and the profile parameters."""

    def opt(self, name: str, max_len: int = 255) -> str | None:
        """A text parameter, or None when the caller did not send it."""
        if self.body_args().get(name) is None:
            return None
        return self.arg(name, max_len=max_len)

    def profile(self) -> Profile:
        """The document's profile fields (`user_name`, `nick_name`, `phone`, `email`,
        `avatar`); `company` is read (so an over-long one is refused) and not stored."""
        self.opt("company")
        return Profile(user_name=self.opt("user_name", 64), nick_name=self.opt("nick_name"),
                       phone=self.opt("phone", 64), email=self.opt("email"),
                       avatar=self.opt("avatar", 1024))

    def new_password(self, first: str, second: str) -> str:
        password = self.arg(first, required=True, max_len=MAX_PASSWORD_ARG)
        try:
            check_new_password(password,
                               self.arg(second, required=True, max_len=MAX_PASSWORD_ARG))
        except PasswordRefused as exc:
            raise ApiError(400, 1, exc.msg) from None
        return password

    def business_arg(self, required: bool = False) -> str:
        """`business_id`, after `require_business` (own business, or any for a
        super_manager); "" when not sent and not required."""
        business_id = self.arg("business_id", max_len=100, required=required)
        if business_id:
            self.require_business(business_id)
        return business_id


class RegistForServiceHandler(ManagerHandler):
    """`POST /admin/manager/registForService`: `user_name`, `nick_name`, `password`,
    `password2`, `phone`, `email`, `avatar`; a super_manager may add `business_id` and
    `level` (service or manager). Manager and up."""

    async def post(self) -> None:
        caller = self.require_level("manager")
        business_id = self.business_arg()
        profile = self.profile()
        if profile.user_name is None:
            raise ApiError(400, 1, "missing parameter: user_name")
        password = self.new_password("password", "password2")
        row = await self.agents.register(caller, password, profile,
                                         level=self.arg("level", max_len=20) or "service",
                                         business_id=business_id)
        self.answer(0, OK, row)


class UpdateHandler(ManagerHandler):
    """`POST /admin/manager/update`: `user_name`, `nick_name`, `phone`, `email`, `company`,
    `avatar` of the caller, or (manager and up) of agent `service_id` below it."""

    async def post(self) -> None:
        service_id = self.int_arg("service_id", 0)
        if service_id and service_id != self.agent.service_id:
            self.require_level("manager")
        row = await self.agents.update_profile(self.agent, self.profile(), service_id)
        self.answer(0, OK, row)


class ModifyHandler(ManagerHandler):
    """`POST /admin/manager/modify`: `oldpass`, `newpass`, `newpass2`: the caller's own
    password. Every other session of the agent ends; this one continues."""

    async def post(self) -> None:
        oldpass = self.arg("oldpass", required=True, max_len=MAX_PASSWORD_ARG)
        newpass = self.new_password("newpass", "newpass2")
        row = await self.agents.change_password(self.agent, oldpass, newpass)
        self.login_agent(row)
        self.answer(0, OK)


class AgentListHandler(ManagerHandler):
    """`GET /admin/manager/list`: the agents of the caller's business, or of `business_id`
    for a super_manager. Manager and up. Never the password hash."""

    async def get(self) -> None:
        caller = self.require_level("manager")
        rows = await self.agents.list_agents(caller, self.business_arg())
        self.answer(0, "", rows)

    post = get


class AgentDeleteHandler(ManagerHandler):
    """`POST /admin/manager/delete`: `service_id`. Manager and up."""

    async def post(self) -> None:
        caller = self.require_level("manager")
        service_id = self.int_arg("service_id", 0)
        if service_id <= 0:
            raise ApiError(400, 1, "missing parameter: service_id")
        self.answer(0, OK, await self.agents.delete(caller, service_id))


class BusinessListHandler(ManagerHandler):
    """`GET /admin/business/list`: every business with `agents` / `online` counts.
    super_manager only."""

    async def get(self) -> None:
        caller = self.require_level("super_manager")
        self.answer(0, "", await self.agents.businesses(caller))

    post = get


class BusinessAddHandler(ManagerHandler):
    """`POST /admin/business/add`: `business_id`, `distribution_rule` (auto | claim,
    default auto) and its first manager's `user_name`, `nick_name`, `password`,
    `password2`. super_manager only."""

    async def post(self) -> None:
        caller = self.require_level("super_manager")
        business_id = self.arg("business_id", required=True, max_len=100)
        user_name = self.arg("user_name", required=True, max_len=64)
        password = self.new_password("password", "password2")
        data = await self.agents.add_business(
            caller, business_id, password,
            Profile(user_name=user_name, nick_name=self.opt("nick_name")),
            distribution_rule=self.arg("distribution_rule", max_len=10) or "auto")
        self.answer(0, OK, data)


class BusinessStateHandler(ManagerHandler):
    """`POST /admin/business/state`: `business_id`, `state` (open | close).
    super_manager only."""

    async def post(self) -> None:
        caller = self.require_level("super_manager")
        business_id = self.arg("business_id", required=True, max_len=100)
        state = self.arg("state", required=True, max_len=10)
        self.answer(0, OK, await self.agents.set_business_state(caller, business_id, state))


class SetStatusHandler(AgentApiHandler):
    """`POST /admin/set/status` with `status` = `available` | `away` (the caller's own
    status; `_xsrf` as every console POST). Answer `{code: 0, data: {service_id, status,
    state, changed}}`; code 1 (400) for another value, 401 when not logged in."""

    async def post(self) -> None:
        status = self.arg("status", required=True, max_len=20)
        self.answer(0, "", await self.agent_status.set(self.agent, status))


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/manager/regist[Ff]or[Ss]ervice", RegistForServiceHandler),
        (r"/admin/manager/update", UpdateHandler),
        (r"/admin/manager/modify", ModifyHandler),
        (r"/admin/manager/list", AgentListHandler),
        (r"/admin/manager/delete", AgentDeleteHandler),
        (r"/admin/business/list", BusinessListHandler),
        (r"/admin/business/add", BusinessAddHandler),
        (r"/admin/business/state", BusinessStateHandler),
        (r"/admin/set/status", SetStatusHandler),
    ]
