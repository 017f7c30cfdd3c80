"""The first-run installer, login and logout, and the root redirect (the password rules are
`realtime.passwords`')."""
from __future__ import annotations


import tornado.web

from realtime.chat.agents import USER_NAME_RE
from realtime.chat.values import BUSINESS_ID_RE
from realtime.passwords import PasswordRefused, check_new_password, check_password, hash_password
from store import Conflict

from .base import AGENT_COOKIE, ApiError, PageHandler


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
        except (ApiError, PasswordRefused) as exc:
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


def routes() -> list[tuple[str, type]]:
    return [
        (r"/", RootHandler),
        (r"/install(?:\.php)?", InstallHandler),
        (r"/admin/login/index", LoginHandler),
        (r"/admin/login/logout", LogoutHandler),
    ]
