"""Agent management (`/admin/manager/...`) and businesses (`/admin/business/...`).

Two businesses: shop1 (the installer's super_manager `boss`, manager `mgr_a`, service
`svc_a`) and shop2 (manager `mgr_b`, service `svc_b`). Every URL: success, each error code,
nobody logged in, too low a level, another business; what is stored is read straight from
the database.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import BIZ as A
from helpers import OTHER_BIZ as B
from helpers import PASSWORD as PW
from helpers import Client, PusherSocket, db_rows, wait_for
from shop import Shop

NEW_PW = "another-secret-9"


@dataclass
class World:
    base_url: str
    db: str
    server: Any
    boss: Client
    mgr_a: Client
    svc_a: Client
    mgr_b: Client
    svc_b: Client
    ids: dict[str, int]

    def row(self, user_name: str) -> dict[str, Any] | None:
        rows = db_rows(self.db, "SELECT * FROM wolive_service WHERE user_name = %s",
                       (user_name,))
        return rows[0] if rows else None

    async def anonymous(self) -> Client:
        """A browser that is not logged in but holds a valid `_xsrf` token, so the 401 is
        about the missing login, not the token."""
        c = Client(self.base_url)
        await c.get_xsrf()
        return c

    async def client(self, user: str, password: str = PW) -> Client:
        c = Client(self.base_url)
        resp = await c.login(user, password)
        assert resp.code == 302, (user, resp.code)
        return c


@pytest.fixture
def world(io_loop: Any, base_url: str, shop: Shop) -> World:
    async def build() -> World:
        ids, clients = await shop.staff(("mgr_a", "manager", A), ("svc_a", "service", A),
                                        ("mgr_b", "manager", B), ("svc_b", "service", B),
                                        nick=str.upper)
        return World(base_url=base_url, db=shop.db, server=shop.server, ids=ids, **clients)
    return io_loop.run_sync(build)


def new_agent(**extra: Any) -> dict[str, Any]:
    form = {"user_name": "newbie", "nick_name": "小新", "password": PW, "password2": PW,
            "phone": "+86 138-0000-0000", "email": "newbie@example.com",
            "avatar": "/upload/avatar/newbie.png"}
    form.update(extra)
    return form


async def post(c: Client, path: str, **form: Any) -> tuple[int, dict[str, Any]]:
    return await c.json(path, "POST", form=form)


# ---- /admin/manager/registForService ------------------------------------------------------

REGIST = "/admin/manager/registForService"


@pytest.mark.gen_test
async def test_manager_registers_service_in_own_business(world: World) -> None:
    code, body = await post(world.mgr_a, REGIST, **new_agent())
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    assert "password" not in body["data"]
    row = world.row("newbie")
    assert row is not None
    assert (row["level"], row["business_id"], row["parent_id"]) == \
        ("service", A, world.ids["mgr_a"])
    assert (row["nick_name"], row["phone"], row["email"], row["avatar"]) == \
        ("小新", "+86 138-0000-0000", "newbie@example.com", "/upload/avatar/newbie.png")
    assert row["password"].startswith("$2b$") and PW not in row["password"]
    await world.client("newbie")  # the new agent can log in


@pytest.mark.gen_test
async def test_regist_lowercase_url_and_defaults(world: World) -> None:
    code, body = await post(world.mgr_a, "/admin/manager/registforservice",
                            user_name="plain", password=PW, password2=PW)
    assert (code, body["code"]) == (200, 0), body
    row = world.row("plain")
    assert row is not None
    assert (row["nick_name"], row["avatar"], row["phone"], row["email"]) == \
        ("plain", "/assets/images/admin/avatar-admin2.png", "", "")


@pytest.mark.gen_test
async def test_regist_ignores_mass_assignment(world: World) -> None:
    code, body = await post(world.mgr_a, REGIST, **new_agent(
        parent_id=99, state="online", service_id=500, password_hash="x"))
    assert (code, body["code"]) == (200, 0), body
    row = world.row("newbie")
    assert row is not None
    assert (row["parent_id"], row["state"]) == (world.ids["mgr_a"], "offline")
    assert row["service_id"] != 500


@pytest.mark.gen_test
@pytest.mark.parametrize("extra", [
    {"level": "manager"}, {"level": "super_manager"}, {"business_id": B},
])
async def test_manager_cannot_raise_level_or_reach_other_business(
        world: World, extra: dict) -> None:
    code, body = await post(world.mgr_a, REGIST, **new_agent(**extra))
    assert (code, body["code"]) == (403, 1), body
    assert world.row("newbie") is None


@pytest.mark.gen_test
async def test_manager_of_b_cannot_register_into_a(world: World) -> None:
    code, body = await post(world.mgr_b, REGIST, **new_agent(business_id=A))
    assert (code, body["code"]) == (403, 1)
    assert world.row("newbie") is None


@pytest.mark.gen_test
async def test_super_manager_registers_manager_in_any_business(world: World) -> None:
    code, body = await post(world.boss, REGIST, **new_agent(business_id=B, level="manager"))
    assert (code, body["code"]) == (200, 0), body
    row = world.row("newbie")
    assert row is not None and (row["level"], row["business_id"], row["parent_id"]) == \
        ("manager", B, 1)
    # Nobody creates a super_manager, not even a super_manager.
    code, body = await post(world.boss, REGIST, **new_agent(user_name="root2",
                                                            level="super_manager"))
    assert (code, body["code"]) == (403, 1)
    assert world.row("root2") is None
    code, body = await post(world.boss, REGIST, **new_agent(user_name="x9", level="admin"))
    assert (code, body["code"]) == (400, 1)
    code, body = await post(world.boss, REGIST, **new_agent(user_name="x9", business_id="nope"))
    assert (code, body["code"]) == (404, 1)
    assert world.row("x9") is None


@pytest.mark.gen_test
async def test_service_cannot_register_and_anonymous_is_401(world: World) -> None:
    code, body = await post(world.svc_a, REGIST, **new_agent())
    assert (code, body["code"]) == (403, 1)
    code, body = await post(await world.anonymous(), REGIST, **new_agent())
    assert (code, body["code"]) == (401, 1)
    code, body = await world.mgr_a.json(REGIST, "POST", form=new_agent(), xsrf=False)
    assert code == 403 and "_xsrf" in body["msg"]
    assert world.row("newbie") is None


@pytest.mark.gen_test
@pytest.mark.parametrize("extra, status, words", [
    ({"user_name": "svc_b"}, 409, "用户名已存在"),
    ({"user_name": "x"}, 400, "user_name"),
    ({"user_name": "bad name!"}, 400, "user_name"),
    ({"password2": "different-one"}, 400, "differ"),
    ({"password": "short", "password2": "short"}, 400, "at least 8"),
    ({"password": "é" * 40, "password2": "é" * 40}, 400, "72 bytes"),
    ({"nick_name": "<script>alert(1)</script>"}, 400, "nick_name"),
    ({"email": "not-an-email"}, 400, "email"),
    ({"phone": "call me<b>"}, 400, "phone"),
    ({"avatar": "javascript:alert(1)"}, 400, "avatar"),
    ({"avatar": "http://evil.example/a.png"}, 400, "avatar"),
    ({"avatar": "//evil.example/a.png"}, 400, "avatar"),
    ({"avatar": "/upload//evil.example/a.png"}, 400, "avatar"),
    ({"avatar": "/upload/../wolive.py"}, 400, "avatar"),
    ({"avatar": "/assets/a.png\" onerror=\"x"}, 400, "avatar"),
    ({"avatar": "/static/a.png"}, 400, "avatar"),
])
async def test_regist_refuses_bad_input(world: World, extra: dict, status: int,
                                        words: str) -> None:
    before = db_rows(world.db, "SELECT COUNT(*) AS n FROM wolive_service")[0]["n"]
    code, body = await post(world.mgr_a, REGIST, **new_agent(**extra))
    assert (code, body["code"]) == (status, 1), body
    assert words in body["msg"]
    assert db_rows(world.db, "SELECT COUNT(*) AS n FROM wolive_service")[0]["n"] == before


@pytest.mark.gen_test
async def test_regist_missing_user_name(world: World) -> None:
    form = new_agent()
    del form["user_name"]
    code, body = await post(world.mgr_a, REGIST, **form)
    assert (code, body["code"]) == (400, 1) and "user_name" in body["msg"]


# ---- /admin/manager/update ----------------------------------------------------------------

UPDATE = "/admin/manager/update"


@pytest.mark.gen_test
async def test_agent_updates_own_profile_only_whitelisted(world: World) -> None:
    code, body = await post(world.svc_a, UPDATE, user_name="svc_a", nick_name="Alice",
                            phone="123", email="a@example.com", company="ACME Ltd",
                            avatar="/assets/images/admin/a.png",
                            level="super_manager", business_id=B, password="hacked-123",
                            parent_id=7, state="online")
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    assert "password" not in body["data"]
    row = world.row("svc_a")
    assert row is not None
    assert (row["nick_name"], row["phone"], row["email"], row["avatar"]) == \
        ("Alice", "123", "a@example.com", "/assets/images/admin/a.png")
    assert (row["level"], row["business_id"], row["parent_id"], row["state"]) == \
        ("service", A, 0, "offline")
    await world.client("svc_a", PW)  # password untouched
    # Fields not sent stay as they are.
    code, body = await post(world.svc_a, UPDATE, phone="456")
    row = world.row("svc_a")
    assert row is not None and (row["nick_name"], row["phone"]) == ("Alice", "456")


@pytest.mark.gen_test
async def test_update_user_name_when_free(world: World) -> None:
    code, body = await post(world.svc_a, UPDATE, user_name="svc_b", nick_name="A")
    assert (code, body["code"]) == (409, 1) and "用户名已存在" in body["msg"]
    assert world.row("svc_a") is not None
    code, body = await post(world.svc_a, UPDATE, user_name="alice")
    assert (code, body["code"]) == (200, 0), body
    assert world.row("svc_a") is None and world.row("alice") is not None
    await world.client("alice", PW)
    # The session survives its own rename.
    code, body = await post(world.svc_a, UPDATE, nick_name="Alice")
    assert (code, body["code"]) == (200, 0)


@pytest.mark.gen_test
async def test_update_user_name_refused_while_password_is_legacy_md5(world: World) -> None:
    legacy = hashlib.md5(("svc_a" + "hjkj" + "old-pw").encode()).hexdigest()
    db_rows(world.db, "UPDATE wolive_service SET password = %s WHERE user_name = 'svc_a'",
            (legacy,))
    code, body = await post(world.mgr_a, UPDATE, service_id=world.ids["svc_a"],
                            user_name="renamed")
    assert (code, body["code"]) == (409, 1), body
    assert world.row("svc_a") is not None


@pytest.mark.gen_test
@pytest.mark.parametrize("field, value", [
    ("nick_name", ""), ("nick_name", "a>b"), ("avatar", "javascript:alert(1)"),
    ("avatar", "https://cdn.example/x.png"), ("email", "x@"), ("user_name", "a b"),
    ("company", "c" * 300),
])
async def test_update_refuses_bad_fields(world: World, field: str, value: str) -> None:
    before = world.row("svc_a")
    code, body = await post(world.svc_a, UPDATE, **{field: value})
    assert (code, body["code"]) == (400, 1), body
    assert world.row("svc_a") == before


@pytest.mark.gen_test
async def test_manager_updates_service_of_own_business(world: World) -> None:
    code, body = await post(world.mgr_a, UPDATE, service_id=world.ids["svc_a"],
                            nick_name="Renamed by manager", level="manager")
    assert (code, body["code"]) == (200, 0), body
    row = world.row("svc_a")
    assert row is not None and (row["nick_name"], row["level"]) == \
        ("Renamed by manager", "service")
    # A super_manager may edit a manager of another business.
    code, body = await post(world.boss, UPDATE, service_id=world.ids["mgr_b"], nick_name="MB")
    assert (code, body["code"]) == (200, 0)
    row = world.row("mgr_b")
    assert row is not None and row["nick_name"] == "MB"


@pytest.mark.gen_test
@pytest.mark.parametrize("caller, target, status", [
    ("mgr_a", "svc_b", 403),   # another business
    ("mgr_a", "mgr_b", 403),   # another business
    ("mgr_b", "svc_a", 403),   # another business
    ("mgr_a", "boss", 403),    # above it
    ("svc_a", "mgr_a", 403),   # a service edits only itself
    ("svc_a", "svc_b", 403),
    ("mgr_a", "nobody", 404),
])
async def test_update_of_others_refused(world: World, caller: str, target: str,
                                        status: int) -> None:
    target_id = world.ids.get(target, 9999)
    before = db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id")
    code, body = await post(getattr(world, caller), UPDATE, service_id=target_id,
                            nick_name="pwned")
    assert (code, body["code"]) == (status, 1), body
    assert db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id") == before


@pytest.mark.gen_test
async def test_update_needs_login(world: World) -> None:
    code, body = await post(await world.anonymous(), UPDATE, nick_name="x")
    assert (code, body["code"]) == (401, 1)


# ---- /admin/manager/modify ----------------------------------------------------------------

MODIFY = "/admin/manager/modify"


@pytest.mark.gen_test
async def test_modify_changes_own_password_and_ends_other_sessions(world: World) -> None:
    other_tab = await world.client("svc_a")  # a second session of the same agent
    assert (await other_tab.json("/admin/set/getchats"))[0] == 200
    old_hash = world.row("svc_a")["password"]  # type: ignore[index]

    code, body = await post(world.svc_a, MODIFY, oldpass=PW, newpass=NEW_PW, newpass2=NEW_PW,
                            service_id=world.ids["mgr_a"])  # no target: own password only
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    row = world.row("svc_a")
    assert row is not None and row["password"] != old_hash and row["password"].startswith("$2")
    assert world.row("mgr_a")["password"] == world.row("mgr_b")["password"]  # type: ignore[index]

    # This session continues; the other one ended.
    assert (await world.svc_a.json("/admin/set/getchats"))[0] == 200
    code, body = await other_tab.json("/admin/set/getchats")
    assert (code, body["code"]) == (401, 1)
    assert (await Client(world.base_url).login("svc_a", PW)).code == 401
    await world.client("svc_a", NEW_PW)


@pytest.mark.gen_test
@pytest.mark.parametrize("form, status, words", [
    ({"oldpass": "wrong-password", "newpass": NEW_PW, "newpass2": NEW_PW}, 403, "旧密码错误"),
    ({"oldpass": PW, "newpass": NEW_PW, "newpass2": NEW_PW + "x"}, 400, "differ"),
    ({"oldpass": PW, "newpass": "short", "newpass2": "short"}, 400,
     "at least 8 characters / 密码至少 8"),
    ({"newpass": NEW_PW, "newpass2": NEW_PW}, 400, "oldpass"),
    ({"oldpass": PW, "newpass": NEW_PW}, 400, "newpass2"),
])
async def test_modify_refusals_change_nothing(world: World, form: dict, status: int,
                                              words: str) -> None:
    before = world.row("mgr_a")
    code, body = await post(world.mgr_a, MODIFY, **form)
    assert (code, body["code"]) == (status, 1), body
    assert words in body["msg"]
    assert world.row("mgr_a") == before
    assert (await world.mgr_a.json("/admin/set/getchats"))[0] == 200


@pytest.mark.gen_test
async def test_modify_needs_login_and_xsrf(world: World) -> None:
    form = {"oldpass": PW, "newpass": NEW_PW, "newpass2": NEW_PW}
    code, body = await post(await world.anonymous(), MODIFY, **form)
    assert (code, body["code"]) == (401, 1)
    code, body = await world.mgr_a.json(MODIFY, "POST", form=form, xsrf=False)
    assert code == 403
    await world.client("mgr_a", PW)


# ---- /admin/manager/list ------------------------------------------------------------------

LIST = "/admin/manager/list"


@pytest.mark.gen_test
async def test_manager_lists_own_business_without_hashes(world: World) -> None:
    code, body = await world.mgr_a.json(LIST)
    assert (code, body["code"]) == (200, 0), body
    names = [r["user_name"] for r in body["data"]]
    assert names == ["boss", "mgr_a", "svc_a"]  # highest level first
    for r in body["data"]:
        assert "password" not in r and r["business_id"] == A
    assert "$2" not in str(body)


@pytest.mark.gen_test
async def test_super_manager_lists_any_business(world: World) -> None:
    code, body = await world.boss.json(LIST, form={"business_id": B})
    assert (code, body["code"]) == (200, 0)
    assert [r["user_name"] for r in body["data"]] == ["mgr_b", "svc_b"]
    code, body = await world.boss.json(LIST, form={"business_id": "nope"})
    assert (code, body["code"]) == (404, 1)


@pytest.mark.gen_test
async def test_list_refused_to_other_business_service_and_anonymous(world: World) -> None:
    code, body = await world.mgr_a.json(LIST, form={"business_id": B})
    assert (code, body["code"]) == (403, 1)
    code, body = await world.mgr_b.json(LIST, form={"business_id": A})
    assert (code, body["code"]) == (403, 1)
    code, body = await world.svc_a.json(LIST)
    assert (code, body["code"]) == (403, 1)
    code, body = await Client(world.base_url).json(LIST)
    assert (code, body["code"]) == (401, 1)


# ---- /admin/manager/delete ----------------------------------------------------------------

DELETE = "/admin/manager/delete"


@pytest.mark.gen_test
async def test_manager_deletes_service_and_its_visitors_go_back_to_waiting(
        world: World, ws_base: str) -> None:
    store, chat = world.server.store, world.server.chat
    svc = world.ids["svc_a"]
    for vid in ("v-open", "v-done"):
        await store.upsert_visiter(vid, A, vid.upper(), chat.channel_for(A, vid), "", "", "")
        await store.put_queue(vid, A, svc)
    db_rows(world.db, "UPDATE wolive_queue SET state = 'complete' WHERE visiter_id = 'v-done'")
    await store.save_greeting(svc, "hello from svc_a")
    db_rows(world.db, "INSERT INTO wolive_weixin (service_id, open_id) VALUES (%s, 'oid')",
            (svc,))
    db_rows(world.db, "UPDATE wolive_service SET parent_id = %s WHERE user_name = 'mgr_a'",
            (svc,))
    sock = await PusherSocket.connect(ws_base, cookie=world.mgr_a.cookie_header())
    assert (await sock.subscribe("all" + A))["event"] == "pusher_internal:subscription_succeeded"

    code, body = await post(world.mgr_a, DELETE, service_id=svc)
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    assert body["data"] == {"service_id": svc, "released": 1}
    assert world.row("svc_a") is None
    queue = db_rows(world.db, "SELECT visiter_id, service_id, state FROM wolive_queue "
                    "ORDER BY visiter_id")
    assert queue == [{"visiter_id": "v-done", "service_id": 0, "state": "complete"},
                     {"visiter_id": "v-open", "service_id": 0, "state": "normal"}]
    frame = await sock.expect("on_notice", "all" + A)
    assert frame["data"]["visiter_id"] == "v-open"
    assert frame["data"]["channel"] == chat.channel_for(A, "v-open")
    assert db_rows(world.db, "SELECT * FROM wolive_sentence WHERE service_id = %s", (svc,)) == []
    assert db_rows(world.db, "SELECT * FROM wolive_weixin WHERE service_id = %s", (svc,)) == []
    assert world.row("mgr_a")["parent_id"] == world.ids["mgr_a"]  # type: ignore[index]
    # The deleted agent's session is gone.
    code, body = await world.svc_a.json("/admin/set/getchats")
    assert (code, body["code"]) == (401, 1)
    assert (await Client(world.base_url).login("svc_a", PW)).code == 401


@pytest.mark.gen_test
async def test_under_auto_a_deleted_agents_visitors_go_to_an_online_agent(
        world: World, ws_base: str) -> None:
    """Under `auto` a deleted agent's visitors do not wait for the next arrival: an online
    agent with room takes them at once, as when a conversation closes."""
    store, chat = world.server.store, world.server.chat
    svc, mgr = world.ids["svc_a"], world.ids["mgr_a"]
    assert (await store.get_business(A))["distribution_rule"] == "auto"
    await store.upsert_visiter("v-1", A, "V-1", chat.channel_for(A, "v-1"), "", "", "")
    await store.put_queue("v-1", A, svc)
    db_rows(world.db, "UPDATE wolive_service SET state = 'online' WHERE service_id = %s", (mgr,))
    sock = await PusherSocket.connect(ws_base, cookie=world.mgr_a.cookie_header())
    await sock.subscribe(f"ud{mgr}")

    code, body = await post(world.mgr_a, DELETE, service_id=svc)
    assert (code, body["code"], body["data"]) == (200, 0, {"service_id": svc, "released": 1})
    assert db_rows(world.db, "SELECT service_id, state FROM wolive_queue WHERE visiter_id = "
                   "'v-1'") == [{"service_id": mgr, "state": "normal"}]
    assert (await sock.expect("on_notice", f"ud{mgr}"))["data"]["visiter_id"] == "v-1"


@pytest.mark.gen_test
@pytest.mark.parametrize("caller, target, status", [
    ("mgr_a", "svc_b", 403),   # another business
    ("mgr_b", "svc_a", 403),   # another business
    ("mgr_a", "mgr_b", 403),
    ("mgr_a", "boss", 403),    # above it
    ("mgr_a", "mgr_a", 403),   # itself
    ("boss", "boss", 403),     # itself
    ("svc_a", "svc_a", 403),   # too low a level
    ("svc_a", "mgr_a", 403),
    ("mgr_a", "nobody", 404),
])
async def test_delete_refused(world: World, caller: str, target: str, status: int) -> None:
    before = db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id")
    code, body = await post(getattr(world, caller), DELETE,
                            service_id=world.ids.get(target, 9999))
    assert (code, body["code"]) == (status, 1), body
    assert db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id") == before


@pytest.mark.gen_test
async def test_manager_cannot_delete_another_manager_of_same_business(world: World) -> None:
    row = await world.server.store.add_service(A, "mgr_a2", "M2", "x", level="manager")
    code, body = await post(world.mgr_a, DELETE, service_id=row["service_id"])
    assert (code, body["code"]) == (403, 1)
    assert world.row("mgr_a2") is not None


@pytest.mark.gen_test
async def test_super_manager_deletes_manager_of_any_business(world: World) -> None:
    code, body = await post(world.boss, DELETE, service_id=world.ids["mgr_b"])
    assert (code, body["code"]) == (200, 0), body
    assert world.row("mgr_b") is None
    code, body = await post(world.boss, DELETE, service_id=world.ids["mgr_b"])
    assert (code, body["code"]) == (404, 1)


@pytest.mark.gen_test
async def test_delete_bad_input_and_anonymous(world: World) -> None:
    code, body = await post(world.mgr_a, DELETE)
    assert (code, body["code"]) == (400, 1)
    code, body = await post(world.mgr_a, DELETE, service_id="abc")
    assert (code, body["code"]) == (400, 1)
    code, body = await post(await world.anonymous(), DELETE, service_id=world.ids["svc_a"])
    assert (code, body["code"]) == (401, 1)
    code, body = await world.mgr_a.json(DELETE, "POST", form={
        "service_id": world.ids["svc_a"]}, xsrf=False)
    assert code == 403
    assert world.row("svc_a") is not None


# ---- /admin/business/... ------------------------------------------------------------------

@pytest.mark.gen_test
async def test_business_list_for_super_manager_only(world: World) -> None:
    db_rows(world.db, "UPDATE wolive_service SET state = 'online' WHERE user_name = 'svc_b'")
    code, body = await world.boss.json("/admin/business/list")
    assert (code, body["code"]) == (200, 0), body
    got = {r["business_id"]: (r["agents"], r["online"], r["state"]) for r in body["data"]}
    assert got == {A: (3, 0, "open"), B: (2, 1, "open")}
    for who in ("mgr_a", "svc_a", "mgr_b"):
        code, body = await getattr(world, who).json("/admin/business/list")
        assert (code, body["code"]) == (403, 1)
    code, body = await Client(world.base_url).json("/admin/business/list")
    assert (code, body["code"]) == (401, 1)


def business_form(**extra: Any) -> dict[str, Any]:
    form = {"business_id": "shop3", "user_name": "mgr_c", "nick_name": "Manager C",
            "password": PW, "password2": PW}
    form.update(extra)
    return form


@pytest.mark.gen_test
async def test_business_add_creates_business_and_manager(world: World) -> None:
    code, body = await post(world.boss, "/admin/business/add",
                            **business_form(distribution_rule="claim", level="super_manager"))
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    assert body["data"]["business"]["business_id"] == "shop3"
    assert "password" not in body["data"]["manager"]
    biz = db_rows(world.db, "SELECT * FROM wolive_business WHERE business_id = 'shop3'")
    assert len(biz) == 1 and biz[0]["distribution_rule"] == "claim" and biz[0]["state"] == "open"
    row = world.row("mgr_c")
    assert row is not None and (row["level"], row["business_id"], row["parent_id"]) == \
        ("manager", "shop3", 1)
    mgr_c = await world.client("mgr_c")
    code, body = await mgr_c.json(LIST)
    assert [r["user_name"] for r in body["data"]] == ["mgr_c"]


@pytest.mark.gen_test
@pytest.mark.parametrize("extra, status", [
    ({"business_id": B}, 409),                      # business exists
    ({"business_id": B.upper()}, 409),              # the same id in other case, as MariaDB
    ({"user_name": "svc_a"}, 409),                  # user name taken: no business either
    ({"business_id": "bad id!"}, 400),
    ({"business_id": ""}, 400),
    ({"user_name": "x"}, 400),
    ({"password2": "different-one"}, 400),
    ({"password": "short", "password2": "short"}, 400),
    ({"distribution_rule": "random"}, 400),
    ({"nick_name": "<img src=x>"}, 400),
])
async def test_business_add_refusals_write_nothing(world: World, extra: dict,
                                                   status: int) -> None:
    before = (db_rows(world.db, "SELECT * FROM wolive_business ORDER BY wid"),
              db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id"))
    code, body = await post(world.boss, "/admin/business/add", **business_form(**extra))
    assert (code, body["code"]) == (status, 1), body
    after = (db_rows(world.db, "SELECT * FROM wolive_business ORDER BY wid"),
             db_rows(world.db, "SELECT * FROM wolive_service ORDER BY service_id"))
    assert after == before


@pytest.mark.gen_test
async def test_business_add_refused_below_super_manager(world: World) -> None:
    for who in ("mgr_a", "svc_a", "mgr_b"):
        code, body = await post(getattr(world, who), "/admin/business/add", **business_form())
        assert (code, body["code"]) == (403, 1)
    code, body = await post(await world.anonymous(), "/admin/business/add", **business_form())
    assert (code, body["code"]) == (401, 1)
    assert db_rows(world.db, "SELECT * FROM wolive_business WHERE business_id = 'shop3'") == []
    assert world.row("mgr_c") is None


@pytest.mark.gen_test
async def test_business_state_closes_and_opens(world: World) -> None:
    from helpers import open_visitor_window
    code, body = await post(world.boss, "/admin/business/state", business_id=B, state="close")
    assert (code, body["code"]) == (200, 0), body
    assert body["data"]["state"] == "close"
    assert db_rows(world.db, "SELECT state FROM wolive_business WHERE business_id = %s",
                   (B,)) == [{"state": "close"}]
    visitor, boot = await open_visitor_window(world.base_url, B, "v-closed")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "v-closed", "business_id": B, "channel": boot["channel"]})
    assert body["code"] == 1 and body["msg"] == "该网站已经停止客服咨询！"
    code, body = await post(world.boss, "/admin/business/state", business_id=B, state="open")
    assert (code, body["code"]) == (200, 0)
    await wait_for(lambda: db_rows(world.db, "SELECT state FROM wolive_business WHERE "
                                   "business_id = %s", (B,)) == [{"state": "open"}])


@pytest.mark.gen_test
@pytest.mark.parametrize("caller, form, status", [
    ("boss", {"business_id": B, "state": "closed"}, 400),
    ("boss", {"business_id": B}, 400),
    ("boss", {"business_id": "nope", "state": "close"}, 404),
    ("mgr_a", {"business_id": A, "state": "close"}, 403),   # even its own business
    ("mgr_a", {"business_id": B, "state": "close"}, 403),   # another business
    ("svc_a", {"business_id": A, "state": "close"}, 403),
    (None, {"business_id": A, "state": "close"}, 401),
])
async def test_business_state_refusals(world: World, caller: str | None, form: dict,
                                       status: int) -> None:
    c = getattr(world, caller) if caller else await world.anonymous()
    code, body = await post(c, "/admin/business/state", **form)
    assert (code, body["code"]) == (status, 1), body
    assert db_rows(world.db, "SELECT DISTINCT state FROM wolive_business") == [{"state": "open"}]


# ---- one rule for acting on another agent -------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("caller,target,allowed", [
    ("mgr_a", "boss", False),   # above it: the WeChat bindings were readable and writable
    ("mgr_a", "mgr_a", True),   # itself
    ("mgr_a", "svc_a", True),   # a service of its business
    ("mgr_a", "svc_b", False),  # another business
    ("svc_a", "mgr_a", False),  # a service acts on itself only
    ("boss", "mgr_b", True),    # a super_manager, any business, below it
])
async def test_every_url_that_acts_on_another_agent_follows_one_rule(
        world: World, caller: str, target: str, allowed: bool) -> None:
    """`why_not_act_on`: the WeChat bindings (read and write), the greeting switch and the
    profile update answer alike, and a refusal writes nothing."""
    client, sid = getattr(world, caller), world.ids[target]
    await world.server.store.save_greeting(sid, "hi")
    before = {t: db_rows(world.db, f"SELECT * FROM {t}")
              for t in ("wolive_weixin", "wolive_service", "wolive_sentence")}
    answers = [
        await client.json("/admin/manager/weixin", form={"service_id": sid}),
        await post(client, "/admin/manager/weixin", open_id="oPWNED_123", service_id=sid),
        await post(client, "/admin/manager/update", service_id=sid, nick_name="renamed"),
        await post(client, "/admin/manager/greetingstate", service_id=sid, state="unuse"),
    ]
    for code, body in answers:
        if allowed:
            assert code == 200 and body["code"] == 0, (caller, target, body)
        else:
            assert (code, body["code"]) == (403, 1), (caller, target, body)
    if not allowed:
        for table, rows in before.items():
            assert db_rows(world.db, f"SELECT * FROM {table}") == rows, table


@pytest.mark.gen_test
async def test_user_names_differing_only_in_case_are_one_name(shop: Shop) -> None:
    """"Alice" and "alice" are one user name on every database (MariaDB's collation already
    said so; SQLite now has a NOCASE unique index): registering, renaming to or installing
    a name taken in another case is refused 409 and writes nothing; logging in ignores case
    as MariaDB does."""
    db = shop.db
    boss = shop.boss.client
    form = {"user_name": "Alice", "nick_name": "Alice", "password": PW,
            "password2": PW}
    code, body = await boss.json("/admin/manager/registForService", "POST", form=form)
    assert (code, body["code"]) == (200, 0), body
    for name in ("alice", "ALICE", "BOSS"):
        code, body = await boss.json("/admin/manager/registForService", "POST",
                                     form={**form, "user_name": name})
        assert code == 409 and body["code"] != 0 and "taken" in body["msg"], (name, body)
    # Renaming oneself to another agent's name in another case: refused too.
    code, body = await boss.json("/admin/manager/update", "POST",
                                 form={"user_name": "aLiCe"})
    assert code == 409, body
    names = sorted(r["user_name"] for r in db_rows(db, "SELECT user_name FROM wolive_service"))
    assert names == ["Alice", "boss"]
    # Logging in with the name in another case is the same agent.
    alice = Client(shop.base_url)
    resp = await alice.login("ALICE", PW)
    assert resp.code == 302 and resp.headers["Location"] == "/admin/index/index"
