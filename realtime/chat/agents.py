"""Agent management and businesses: who may add, edit, delete agents and open businesses.

URLs are the WoLive document's "客服管理Api" (`/admin/manager/registForService`, `update`,
`modify`) plus list / delete and the super_manager's business pages. The rules close the
flaws of the original WoLive, where any agent could reset any password, delete agents,
create a super_manager and touch other businesses; POST bodies were written whole into
tables; names and avatars carried stored XSS.

Rules, in one place:
- levels rank service < manager < super_manager (`wolive_service.level`); nobody creates a
  super_manager and nobody gives a level at or above their own, except that a
  super_manager may create a manager;
- a manager acts only on its own business and only on `service` agents (plus itself);
  a super_manager on any business and any agent below it (plus itself);
- a password changes only through its owner, who must give the old one;
- only named fields are ever written (no mass assignment); avatars are same-server paths.

Every refusal is an `AgentError` (a `ChatError`, so handlers render it as `{code: 1, msg}`
with its HTTP status). Events are pushed only after the store committed.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from store import Conflict, NotFound, Store

from ..pusher import protocol
from .errors import ChatError
from .facade import Chat
from .values import BUSINESS_ID_RE, Agent
from ..pusher.hub import Hub

#: `wolive_service.level`, lowest first (handlers/base.LEVELS is this).
LEVEL_RANK = {"service": 1, "manager": 2, "super_manager": 3}
#: Agent login names, everywhere (installer, login, register): 2-64 safe characters.
USER_NAME_RE = re.compile(r"^[A-Za-z0-9_\-.@]{2,64}$")
#: Names are shown in consoles and visitor windows: no markup, no control characters.
NICK_NAME_BAD_RE = re.compile(r"[<>\x00-\x1f\x7f]")
MAX_NICK_NAME = 64
#: Digits and the usual phone punctuation, up to 32 characters (empty allowed).
PHONE_RE = re.compile(r"^[0-9+\-() ]{0,32}$")
#: A plain address (empty allowed); the column is 255 characters.
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
MAX_EMAIL = 255
#: An avatar is a file this server serves: under /assets/ or /upload/, plain path
#: characters only (no scheme, no other host, no `..`, no query), so it cannot carry script.
AVATAR_RE = re.compile(r"^/(assets|upload)/[A-Za-z0-9_\-./]{1,1000}$")
DEFAULT_AGENT_AVATAR = "/assets/images/admin/avatar-admin2.png"
DISTRIBUTION_RULES = ("auto", "claim")
BUSINESS_STATES = ("open", "close")

PasswordHasher = Callable[[str], Awaitable[str]]
#: (password, stored hash, user_name) -> matches; see realtime/passwords.check_password.
PasswordChecker = Callable[[str, str, str], Awaitable[bool]]


class AgentError(ChatError):
    """A refusal: `code` 1 (the document's failure code), `msg`, HTTP `status`."""

    def __init__(self, msg: str, status: int) -> None:
        super().__init__(1, msg, status)


# ---- field rules (pure functions) --------------------------------------------------------

def check_user_name(user_name: str) -> str:
    """Raises `AgentError` 400 unless 2-64 of letters, digits, `_ - . @`."""
    if not USER_NAME_RE.match(user_name or ""):
        raise AgentError("user_name: 2-64 letters, digits, _ - . @ / 用户名格式错误", 400)
    return user_name


def check_nick_name(nick_name: str) -> str:
    """Stripped; raises `AgentError` 400 when empty, over 64 characters, or holding `<`, `>`
    or control characters (names are shown to visitors: no stored XSS)."""
    nick_name = (nick_name or "").strip()
    if not nick_name:
        raise AgentError("nick_name is empty / 昵称不能为空", 400)
    if len(nick_name) > MAX_NICK_NAME:
        raise AgentError(f"nick_name is over {MAX_NICK_NAME} characters", 400)
    if NICK_NAME_BAD_RE.search(nick_name):
        raise AgentError("nick_name may not contain < > or control characters", 400)
    return nick_name


def check_phone(phone: str) -> str:
    phone = (phone or "").strip()
    if not PHONE_RE.match(phone):
        raise AgentError("phone: up to 32 digits, spaces and + - ( ) / 手机号格式错误", 400)
    return phone


def check_email(email: str) -> str:
    email = (email or "").strip()
    if email and (len(email) > MAX_EMAIL or not EMAIL_RE.match(email)):
        raise AgentError("email is not an e-mail address / 邮箱格式错误", 400)
    return email


def check_avatar(avatar: str) -> str:
    """Empty (the default picture) or a path this server serves under `/assets/` or
    `/upload/`. Raises `AgentError` 400 for anything else: `javascript:`, `data:`, another
    host (`//evil`, `http://...`), `..`, a query or a fragment."""
    avatar = (avatar or "").strip()
    if not avatar:
        return DEFAULT_AGENT_AVATAR
    if not AVATAR_RE.match(avatar) or "//" in avatar or ".." in avatar.split("/"):
        raise AgentError("avatar must be a picture on this server (/assets/... or /upload/...)",
                         400)
    return avatar


def check_business_id(business_id: str) -> str:
    if not BUSINESS_ID_RE.match(business_id or ""):
        raise AgentError("business_id: 1-100 letters, digits, _ - . / 商户id格式错误", 400)
    return business_id


def rank(level: str) -> int:
    return LEVEL_RANK.get(level, 0)


@dataclass(frozen=True)
class Profile:
    """Profile fields sent by a caller; None = not sent (leave the column as it is)."""

    user_name: str | None = None
    nick_name: str | None = None
    phone: str | None = None
    email: str | None = None
    avatar: str | None = None

    def cleaned(self) -> dict[str, str]:
        """The sent fields, checked and normalised. Raises `AgentError` 400."""
        out: dict[str, str] = {}
        if self.user_name is not None:
            out["user_name"] = check_user_name(self.user_name)
        if self.nick_name is not None:
            out["nick_name"] = check_nick_name(self.nick_name)
        if self.phone is not None:
            out["phone"] = check_phone(self.phone)
        if self.email is not None:
            out["email"] = check_email(self.email)
        if self.avatar is not None:
            out["avatar"] = check_avatar(self.avatar)
        return out


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """An agent row without its password hash."""
    return {k: v for k, v in row.items() if k != "password"}


def why_not_act_on(caller: Agent, target: dict[str, Any]) -> str | None:
    """The one rule for acting on another agent's account, settings or bindings (every
    manager URL): an agent may always act on itself; otherwise only a manager or
    super_manager, only on an agent of a lower level, and (below super_manager) only in its
    own business. `target` is the other agent's `wolive_service` row. Returns None when
    allowed, else the reason for a 403."""
    if target["service_id"] == caller.service_id:
        return None
    if rank(caller.level) < rank("manager"):
        return "needs level manager / 权限不足"
    if caller.level != "super_manager" and target["business_id"] != caller.business_id:
        return "not your business / 无权访问其他商户"
    if rank(target["level"]) >= rank(caller.level):
        return "you may only act on agents below your level / 权限不足"
    return None


class Agents:
    """The agent-management use cases, built once by `wolive.make_app`.
    `hash_password(pw) -> hash` and `check_password(pw, stored, user_name) -> bool` are
    realtime/passwords.py's bcrypt helpers (injected, with the configured rounds)."""

    def __init__(self, store: Store, hub: Hub, hash_password: PasswordHasher,
                 check_password: PasswordChecker, chat: Chat | None = None) -> None:
        """`chat`: the server's chat use cases; a deleted agent's visitors are handed to
        `Chat.agent_deleted` (told, queued, given to agents with room), and opening a
        business (`set_business_state`) runs `Chat.assign_waiting`."""
        self.store = store
        self.hub = hub
        self.hash_password = hash_password
        self.check_password = check_password
        self.chat = chat

    # ---- checks -------------------------------------------------------------------------

    @staticmethod
    def _may_touch_business(caller: Agent, business_id: str) -> None:
        if caller.level != "super_manager" and caller.business_id != business_id:
            raise AgentError("not your business / 无权访问其他商户", 403)

    @staticmethod
    def _at_least(caller: Agent, level: str) -> None:
        if rank(caller.level) < rank(level):
            raise AgentError(f"needs level {level} / 权限不足", 403)

    async def _business(self, business_id: str) -> dict[str, Any]:
        try:
            return await self.store.get_business(business_id)
        except NotFound:
            raise AgentError(f"unknown business_id {business_id!r} / 商户不存在", 404) from None

    async def _target(self, caller: Agent, service_id: int) -> dict[str, Any]:
        """Another agent `caller` may manage (`why_not_act_on`; callers rule out the caller
        itself). Raises `AgentError` 404 / 403."""
        try:
            row = await self.store.get_service(service_id)
        except NotFound:
            raise AgentError(f"no agent {service_id} / 客服不存在", 404) from None
        reason = why_not_act_on(caller, row)
        if reason:
            raise AgentError(reason, 403)
        return row

    # ---- agents -------------------------------------------------------------------------

    async def register(self, caller: Agent, password: str, profile: Profile,
                       level: str = "service", business_id: str = "") -> dict[str, Any]:
        """`/admin/manager/registForService`: add an agent; returns it (no password hash).

        A manager adds a `service` to its own business; a super_manager a `service` or a
        `manager` to any existing business (default: its own). `parent_id` = the caller.
        `password` has passed realtime/passwords.check_new_password. Raises `AgentError`:
        400 bad field or level, 403 level/business not allowed, 404 unknown business,
        409 user_name taken."""
        self._at_least(caller, "manager")
        level = level or "service"
        if level not in LEVEL_RANK:
            raise AgentError("level must be service or manager", 400)
        if level == "super_manager" or rank(level) >= rank(caller.level):
            raise AgentError(f"you may not create a {level} / 不能创建该级别的客服", 403)
        business_id = business_id or caller.business_id
        check_business_id(business_id)
        self._may_touch_business(caller, business_id)
        if profile.user_name is None:
            raise AgentError("missing parameter: user_name", 400)
        fields = replace(profile, nick_name=profile.nick_name or profile.user_name).cleaned()
        await self._business(business_id)
        hashed = await self.hash_password(password)
        try:
            row = await self.store.add_service(
                business_id, fields["user_name"], fields["nick_name"], hashed, level=level,
                parent_id=caller.service_id, avatar=fields.get("avatar"))
        except Conflict:
            raise AgentError("user_name already taken / 用户名已存在", 409) from None
        extra = {k: fields[k] for k in ("phone", "email") if fields.get(k)}
        if extra:
            row = await self.store.update_service_profile(row["service_id"], extra)
        return _public(row)

    async def update_profile(self, caller: Agent, profile: Profile,
                             service_id: int = 0) -> dict[str, Any]:
        """`/admin/manager/update`: edit the caller's own profile, or (manager and up) that
        of agent `service_id` below it in its business. Only user_name, nick_name, phone,
        email, avatar are written; never level, business or password.

        Raises `AgentError`: 400 bad field, 403 not allowed, 404 unknown agent, 409
        user_name taken or not changeable (a password still in the old WoLive md5 form is
        bound to the user name: that agent must log in once first)."""
        if service_id and service_id != caller.service_id:
            self._at_least(caller, "manager")
            target = await self._target(caller, service_id)
        else:
            target = await self.store.get_service(caller.service_id)
        fields = profile.cleaned()
        if fields.get("user_name") == target["user_name"]:
            del fields["user_name"]
        if "user_name" in fields and not str(target["password"]).startswith("$2"):
            raise AgentError("this agent must log in once before its user name can change",
                             409)
        try:
            return await self.store.update_service_profile(target["service_id"], fields)
        except Conflict:
            raise AgentError("user_name already taken / 用户名已存在", 409) from None

    async def change_password(self, caller: Agent, oldpass: str, newpass: str
                              ) -> dict[str, Any]:
        """`/admin/manager/modify`: the caller's own password, given the old one.

        `newpass` has passed realtime/passwords.check_new_password. Returns the caller's full
        row with the new hash (the handler re-issues the caller's session cookie from it;
        every other session, bound to the old hash, ends). Raises `AgentError` 403 when
        `oldpass` is wrong."""
        row = await self.store.get_service(caller.service_id)
        if not await self.check_password(oldpass, row["password"], row["user_name"]):
            raise AgentError("the old password is wrong / 旧密码错误", 403)
        hashed = await self.hash_password(newpass)
        await self.store.set_service_password(caller.service_id, hashed)
        return {**row, "password": hashed}

    async def list_agents(self, caller: Agent, business_id: str = "") -> list[dict[str, Any]]:
        """`/admin/manager/list`: the agents of the caller's business (a super_manager may
        name any). No password hashes. Raises `AgentError` 403 / 404."""
        self._at_least(caller, "manager")
        business_id = business_id or caller.business_id
        self._may_touch_business(caller, business_id)
        await self._business(business_id)
        return await self.store.services_of(business_id)

    async def delete(self, caller: Agent, service_id: int) -> dict[str, Any]:
        """`/admin/manager/delete`: a manager deletes a `service` of its business; a
        super_manager any agent below it; nobody themselves. In one transaction the agent
        goes and its open conversations go back to waiting (`wolive_queue.service_id` 0,
        `Store.delete_service`). Then, at once:

        - its sessions end: every socket opened with its session is closed with
          `SESSION_ENDED` (4009; its console pages go to the sign-in page), and its cookie
          authenticates nothing any more (the row is gone; its id is never given again);
        - its visitors are handled as when an agent goes offline (`Chat.agent_deleted`):
          told in their windows, announced on `all{business_id}` `on_notice` (the shape
          `/admin/event/notice` uses) so another agent can claim them, and under `auto`
          given at once to online agents with room.

        Returns `{service_id, released}` (released = how many visitors went back to
        waiting). Raises `AgentError` 403 / 404."""
        self._at_least(caller, "manager")
        if service_id == caller.service_id:
            raise AgentError("you cannot delete yourself / 不能删除自己", 403)
        target = await self._target(caller, service_id)
        try:
            released = await self.store.delete_service(service_id, caller.service_id)
        except NotFound:
            raise AgentError(f"no agent {service_id} / 客服不存在", 404) from None
        self.hub.close_caller(service_id, protocol.Errors.SESSION_ENDED)
        if self.chat is not None:
            await self.chat.agent_deleted(target, released)
        return {"service_id": target["service_id"], "released": len(released)}

    # ---- businesses (super_manager only) ------------------------------------------------

    async def businesses(self, caller: Agent) -> list[dict[str, Any]]:
        """`/admin/business/list`: every business with its agent counts."""
        self._at_least(caller, "super_manager")
        return await self.store.businesses()

    async def add_business(self, caller: Agent, business_id: str, password: str,
                           profile: Profile, distribution_rule: str = "auto"
                           ) -> dict[str, Any]:
        """`/admin/business/add`: a business and its first manager, both or neither.

        Returns `{business, manager}`. Raises `AgentError` 400 / 403 / 409 (business or
        user_name taken)."""
        self._at_least(caller, "super_manager")
        check_business_id(business_id)
        if distribution_rule not in DISTRIBUTION_RULES:
            raise AgentError("distribution_rule must be auto or claim", 400)
        if profile.user_name is None:
            raise AgentError("missing parameter: user_name", 400)
        fields = Profile(user_name=profile.user_name,
                         nick_name=profile.nick_name or profile.user_name).cleaned()
        hashed = await self.hash_password(password)
        try:
            manager = await self.store.add_business_with_manager(
                business_id, fields["user_name"], fields["nick_name"], hashed,
                parent_id=caller.service_id, distribution_rule=distribution_rule)
        except Conflict as exc:
            what = ("business_id already exists / 商户已存在" if "business" in str(exc)
                    else "user_name already taken / 用户名已存在")
            raise AgentError(what, 409) from None
        return {"business": await self.store.get_business(business_id), "manager": manager}

    async def set_business_state(self, caller: Agent, business_id: str, state: str
                                 ) -> dict[str, Any]:
        """`/admin/business/state`: open or close a business (a closed one answers
        `/admin/event/notice` with code 1). Opening it runs `assign_waiting`: visitors
        who waited while it was closed are served at once (under `auto`) or told their
        places. Raises `AgentError` 400 / 403 / 404."""
        self._at_least(caller, "super_manager")
        if state not in BUSINESS_STATES:
            raise AgentError("state must be open or close", 400)
        try:
            row = await self.store.set_switches(business_id, {"state": state})
        except NotFound:
            raise AgentError(f"unknown business_id {business_id!r} / 商户不存在", 404) from None
        if state == "open" and self.chat is not None:
            await self.chat.assign_waiting(business_id)
        return row
