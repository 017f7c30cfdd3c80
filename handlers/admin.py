"""Console pages: the first-run installer, login and logout, the workbench."""
from __future__ import annotations

import asyncio
from typing import Any

import bcrypt
import tornado.web

from realtime.chat.agents import USER_NAME_RE
from realtime.chat.values import BUSINESS_ID_RE
from store import Conflict

from .base import AGENT_COOKIE, ApiError, BaseHandler
#: Shortest password the installer and agent management accept.
MIN_PASSWORD = 8
#: bcrypt only reads the first 72 bytes; refuse longer rather than silently truncate.
MAX_PASSWORD_BYTES = 72
#: `wolive-md5:<md5 hex>:<old user name>`: the WoLive hash of an agent `import-wolive`
#: renamed (a duplicate user name), salted with the name it had (store/wolive_import.py).
RENAMED_MD5_PREFIX = "wolive-md5:"


async def hash_password(password: str, rounds: int) -> str:
    """bcrypt, off the IOLoop (a cost-12 hash takes ~0.25 s of CPU)."""
    loop = asyncio.get_running_loop()
    salt = bcrypt.gensalt(rounds)
    hashed = await loop.run_in_executor(None, bcrypt.hashpw, password.encode(), salt)
    return hashed.decode()


async def check_password(password: str, stored: str, user_name: str) -> bool:
    """bcrypt, or once the later WoLive `md5(user_name + "hjkj" + password)` (WOLIVE-NOTES,
    "Passwords from an existing WoLive database"; for an agent the import renamed, with its
    old name: `RENAMED_MD5_PREFIX`); the caller rehashes that with bcrypt."""
    if stored.startswith("$2"):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, bcrypt.checkpw, password.encode(),
                                              stored.encode())
        except ValueError:
            return False
    import hashlib
    import hmac
    if stored.startswith(RENAMED_MD5_PREFIX):  # an agent `import-wolive` had to rename
        stored, _, user_name = stored[len(RENAMED_MD5_PREFIX):].partition(":")
    legacy = hashlib.md5((user_name + "hjkj" + password).encode()).hexdigest()
    return hmac.compare_digest(legacy, stored)


def check_new_password(password: str, password2: str | None = None) -> None:
    """Raises `ApiError` 400 with the reason."""
    if password2 is not None and password != password2:
        raise ApiError(400, 1, "the two passwords differ / 两次密码不一致")
    if len(password) < MIN_PASSWORD:
        raise ApiError(400, 1, f"password needs at least {MIN_PASSWORD} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ApiError(400, 1, f"password is over {MAX_PASSWORD_BYTES} bytes")


class PageHandler(BaseHandler):
    html_errors = True


class RootHandler(PageHandler):
    async def get(self) -> None:
        if not await self.store.has_super_manager():
            self.redirect("/install")
        elif self.current_user:
            self.redirect("/admin/index/index")
        else:
            self.redirect("/admin/login/index")


class InstallHandler(PageHandler):
    """`/install`: creates the business and its super_manager while none exists; 404 after."""

    async def prepare(self) -> None:
        await super().prepare()
        if await self.store.has_super_manager():
            raise tornado.web.HTTPError(404, log_message="already installed")

    def get(self) -> None:
        self.render("install.html", error="", form={})

    async def post(self) -> None:
        form = {k: self.get_body_argument(k, "") for k in
                ("business_id", "user_name", "nick_name", "password", "password2")}
        try:
            if not BUSINESS_ID_RE.match(form["business_id"]):
                raise ApiError(400, 1, "business id: 1-100 letters, digits, _ - .")
            if not USER_NAME_RE.match(form["user_name"]):
                raise ApiError(400, 1, "user name: 2-64 letters, digits, _ - . @")
            check_new_password(form["password"], form["password2"])
        except ApiError as exc:
            self.set_status(400)
            self.render("install.html", error=exc.msg, form=form)
            return
        hashed = await hash_password(form["password"], self.config.security.bcrypt_rounds)
        try:
            row = await self.store.install(form["business_id"], form["user_name"],
                                           form["nick_name"] or form["user_name"], hashed)
        except Conflict:
            raise tornado.web.HTTPError(404, log_message="already installed") from None
        self.login_agent(row)
        self.redirect("/admin/index/index")


class LoginHandler(PageHandler):
    """`/admin/login/index`: GET the form, POST `username` + `password` (form or JSON)."""

    async def get(self) -> None:
        if not await self.store.has_super_manager():
            return self.redirect("/install")
        if self.current_user:
            return self.redirect("/admin/index/index")
        self.render("login.html", error="", user_name="")

    async def post(self) -> None:
        user_name = self.get_body_argument("username", "")[:64]
        password = self.get_body_argument("password", "")[:200]
        row = await self.store.find_service_by_name(user_name) if user_name else None
        if row is None or not await check_password(password, row["password"],
                                                      row["user_name"]):
            self.set_status(401)
            self.render("login.html", error="wrong user name or password / 用户名或密码错误",
                        user_name=user_name)
            return
        if not row["password"].startswith("$2"):  # upgrade a legacy md5 hash once
            row["password"] = await hash_password(password,
                                                  self.config.security.bcrypt_rounds)
            await self.store.set_service_password(row["service_id"], row["password"])
        self.login_agent(row)
        self.redirect("/admin/index/index")


class LogoutHandler(PageHandler):
    """`/admin/login/logout` (POST, with `_xsrf`): ends the session. A form is sent to the
    sign-in page (302); a script asking for JSON (`Accept: application/json`, the top bar's
    "Log out", which then tells the browser's other console tabs) gets `{code: 0}`."""

    def post(self) -> None:
        self.clear_cookie(AGENT_COOKIE)
        if self.request.headers.get("Accept", "").startswith("application/json"):
            self.answer(0, "成功")
            return
        self.redirect("/admin/login/index")


class ConsoleHandler(PageHandler):
    """`/admin/index/index`: the agent's workbench."""

    async def get(self) -> None:
        agent = self.current_user
        if agent is None:
            return self.redirect("/admin/login/index")
        boot = self.boot()
        # video.js shows the video button only when the business allows calls.
        boot["video_state"] = (await self.store.get_business(agent.business_id))["video_state"]
        boot["presence"] = await self.settings["wolive_agent_status"].boot(agent)
        self.render("console.html", agent=agent, boot=boot)

    def boot(self) -> dict[str, Any]:
        agent = self.agent
        return {"service_id": agent.service_id, "business_id": agent.business_id,
                "nick_name": agent.nick_name, "avatar": agent.avatar, "level": agent.level,
                "pusher": self.settings["wolive_pusher_client"]}


def routes() -> list[tuple[str, type]]:
    return [
        (r"/", RootHandler),
        (r"/install(?:\.php)?", InstallHandler),
        (r"/admin/login/index", LoginHandler),
        (r"/admin/login/logout", LogoutHandler),
        (r"/admin(?:/index(?:/index)?)?/?", ConsoleHandler),
    ]
