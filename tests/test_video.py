"""Video: `video` / `video-refuse` both ways (WoLive document), the business switch, and the
private call channel only that agent and that visitor may join for WebRTC signalling."""
from __future__ import annotations

from typing import Any

import pytest

import wolive
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

ICE = [{"urls": "stun:stun.example.com:3478"},
       {"urls": ["turn:turn.example.com:3478", "turns:turn.example.com:5349"],
        "username": "wolive", "credential": "s3cret"}]
OK = "pusher_internal:subscription_succeeded"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"video.ice_servers": ICE}


async def setup(base_url: str, ws_base: str, server: Any, video: str = "open"
                ) -> tuple[Client, PusherSocket, Client, dict[str, Any], PusherSocket]:
    """Agent 1 online (socket on kefu1), visitor "v-cam" assigned to it with its socket on
    cu{channel}; the business's video switch set to `video`."""
    db = server.config.database.url
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    await server.store.set_switches(BIZ, {"video_state": video})
    console = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await console.subscribe("kefu1"))["event"] == OK
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")
                   [0]["state"] == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-cam")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "v-cam", "business_id": BIZ, "channel": boot["channel"]})
    assert body["code"] == 0, body
    vsock = await PusherSocket.connect(ws_base)
    assert (await vsock.subscribe("cu" + boot["channel"]))["event"] == OK
    await console.expect("geton", "kefu1")  # the visitor's window is open
    return agent, console, visitor, boot, vsock


def vids(boot: dict[str, Any]) -> dict[str, str]:
    return {"visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"]}


async def add_agent(server: Any, business_id: str, user: str, level: str = "service"
                    ) -> Client:
    from realtime.passwords import hash_password
    await server.store.add_service(business_id, user, user.title(),
                                   await hash_password(PASSWORD, 4), level=level)
    return Client("")


async def login(base_url: str, user: str) -> Client:
    c = Client(base_url)
    assert (await c.login(user, PASSWORD)).code == 302
    return c


async def agent_auth(agent: Client, socket_id: str, channel: str) -> tuple[int, Any]:
    return await agent.json("/admin/set/videoauth", "POST",
                            form={"socket_id": socket_id, "channel_name": channel})


async def visitor_auth(visitor: Client, boot: dict[str, Any], socket_id: str,
                       channel: str) -> tuple[int, Any]:
    return await visitor.json("/admin/event/videoauth", "POST", form={
        **vids(boot), "socket_id": socket_id, "channel_name": channel})


@pytest.mark.gen_test(timeout=20)
async def test_visitor_asks_agent_joins_the_call_and_they_signal(
        base_url: str, ws_base: str, wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server)
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    assert (code, body["code"], body["msg"]) == (200, 0, ""), body
    call = body["data"]["call"]
    assert call.startswith("private-call-") and len(call) == len("private-call-") + 32
    assert body["data"]["ice_servers"] == ICE and body["data"]["service_id"] == 1
    pushed = await console.expect("video", "kefu1")
    assert pushed["data"] == {"visiter_id": "v-cam", "visiter_name": pushed["data"][
        "visiter_name"], "avatar": pushed["data"]["avatar"], "channel": boot["channel"],
        "call": call, "ice_servers": ICE}

    # Both sides join the call channel through their auth URLs, then signal.
    code, signed = await agent_auth(agent, console.socket_id, call)
    assert code == 200 and signed["auth"].startswith("wolive:"), signed
    assert (await console.subscribe(call, signed["auth"]))["event"] == OK
    code, signed = await visitor_auth(visitor, boot, vsock.socket_id, call)
    assert code == 200, signed
    assert (await vsock.subscribe(call, signed["auth"]))["event"] == OK
    console.send("client-offer", {"sdp": "v=0 offer"}, channel=call)
    assert (await vsock.expect("client-offer", call))["data"] == {"sdp": "v=0 offer"}
    vsock.send("client-answer", {"sdp": "v=0 answer"}, channel=call)
    assert (await console.expect("client-answer", call))["data"] == {"sdp": "v=0 answer"}

    # Asking again keeps the same call channel.
    code, again = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    assert again["data"]["call"] == call


@pytest.mark.gen_test(timeout=20)
async def test_agent_asks_and_visitor_refuses(base_url: str, ws_base: str,
                                              wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server)
    code, body = await agent.json("/admin/set/video", "POST", form={"visiter_id": "v-cam"})
    assert (code, body["code"]) == (200, 0), body
    call = body["data"]["call"]
    assert body["data"]["ice_servers"] == ICE
    pushed = await vsock.expect("video")
    assert pushed["data"] == {"service_id": 1, "nick_name": "Boss",
                              "avatar": pushed["data"]["avatar"], "call": call,
                              "ice_servers": ICE}
    code, body = await visitor.json("/admin/event/refuse", "POST",
                                    form={**vids(boot), "call": call})
    assert (code, body["code"]) == (200, 0)
    refused = await console.expect("video-refuse", "kefu1")
    assert refused["data"] == {"visiter_id": "v-cam", "channel": boot["channel"], "call": call}
    # The refused call can no longer be joined.
    code, signed = await visitor_auth(visitor, boot, vsock.socket_id, call)
    assert (code, signed["code"]) == (403, 1)
    code, signed = await agent_auth(agent, console.socket_id, call)
    assert (code, signed["code"]) == (403, 1)


@pytest.mark.gen_test(timeout=20)
async def test_agent_refuses(base_url: str, ws_base: str, wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server)
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    call = body["data"]["call"]
    code, body = await agent.json("/admin/set/refuse", "POST",
                                  form={"visiter_id": "v-cam", "call": call})
    assert (code, body["code"], body["msg"]) == (200, 0, "success")
    refused = await vsock.expect("video-refuse")
    assert refused["data"] == {"service_id": 1, "nick_name": "Boss", "call": call}
    code, signed = await visitor_auth(visitor, boot, vsock.socket_id, call)
    assert code == 403


@pytest.mark.gen_test(timeout=20)
async def test_video_off_for_the_business(base_url: str, ws_base: str,
                                          wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server, video="close")
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    assert (code, body["code"]) == (403, 2), body
    code, body = await agent.json("/admin/set/video", "POST", form={"visiter_id": "v-cam"})
    assert (code, body["code"]) == (403, 2), body
    await console.nothing(0.2)
    await vsock.nothing(0.1)
    # Refusing still works (a call offered before the switch was turned off).
    code, body = await visitor.json("/admin/event/refuse", "POST", form=vids(boot))
    assert body["code"] == 0


@pytest.mark.gen_test(timeout=20)
async def test_visitor_side_errors(base_url: str, ws_base: str, cfg: dict,
                                   wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server)
    wrong = {**vids(boot), "channel": "v" + "1" * 40}
    for path in ("/admin/event/video", "/admin/event/refuse"):
        code, body = await Client(base_url).json(path, "POST", form=wrong)
        assert (code, body["code"]) == (403, 3), (path, body)
    code, body = await Client(base_url).json("/admin/event/video", "POST",
                                             form={"business_id": BIZ})
    assert (code, body["code"]) == (400, 1)
    # A visitor not yet talking to anyone.
    other, other_boot = await open_visitor_window(base_url, BIZ, "v-new")
    code, body = await other.json("/admin/event/video", "POST", form=vids(other_boot))
    assert (code, body["code"]) == (409, 3), body
    # Another visitor cannot join this visitor's call, nor can a stranger.
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    call = body["data"]["call"]
    code, signed = await visitor_auth(other, other_boot, "1.2", call)
    assert (code, signed["code"]) == (403, 1)
    code, signed = await Client(base_url).json("/admin/event/videoauth", "POST", form={
        **wrong, "socket_id": "1.2", "channel_name": call})
    assert (code, signed["code"]) == (403, 3)
    code, signed = await visitor_auth(visitor, boot, "1.2", "private-agent-1")
    assert (code, signed["code"]) == (400, 1)
    code, signed = await visitor_auth(visitor, boot, "nonsense", call)
    assert (code, signed["code"]) == (400, 1)
    # Blacklisted: no calls.
    db_rows(cfg.database.url, "UPDATE wolive_queue SET state = 'in_black_list' "
            "WHERE visiter_id = 'v-cam'")
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    assert (code, body["code"]) == (403, 4)


@pytest.mark.gen_test(timeout=20)
async def test_console_side_login_xsrf_level_and_business(
        base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    agent, console, visitor, boot, vsock = await setup(base_url, ws_base,
                                                      wolive_server)
    code, body = await visitor.json("/admin/event/video", "POST", form=vids(boot))
    call = body["data"]["call"]
    anonymous = Client(base_url)
    await anonymous.get_xsrf()
    for path in ("/admin/set/video", "/admin/set/refuse", "/admin/set/videoauth"):
        code, body = await anonymous.json(path, "POST", form={
            "visiter_id": "v-cam", "socket_id": "1.2", "channel_name": call})
        assert (code, body["code"]) == (401, 1), (path, body)
        code, body = await agent.json(path, "POST", form={
            "visiter_id": "v-cam", "socket_id": "1.2", "channel_name": call}, xsrf=False)
        assert code == 403 and "_xsrf" in body["msg"], (path, body)
    code, body = await agent.json("/admin/set/video", "POST", form={"visiter_id": "nobody"})
    assert (code, body["code"]) == (404, 1)
    # A plain colleague: not its visitor, not its call.
    await add_agent(wolive_server, BIZ, "colleague")
    colleague = await login(base_url, "colleague")
    code, body = await colleague.json("/admin/set/video", "POST", form={"visiter_id": "v-cam"})
    assert (code, body["code"]) == (403, 1)
    code, body = await agent_auth(colleague, "1.2", call)
    assert (code, body["code"]) == (403, 1)
    # Even a super_manager of another business sees neither.
    await wolive_server.store.add_business("shop2")
    await add_agent(wolive_server, "shop2", "outsider", level="super_manager")
    outsider = await login(base_url, "outsider")
    code, body = await outsider.json("/admin/set/video", "POST", form={"visiter_id": "v-cam"})
    assert (code, body["code"]) == (404, 1)
    code, body = await agent_auth(outsider, "1.2", call)
    assert (code, body["code"]) == (403, 1)
    # The agent itself may.
    code, body = await agent_auth(agent, "1.2", call)
    assert code == 200 and "auth" in body


def test_calls_expire_and_ice_servers_are_checked() -> None:
    from realtime.chat.values import Agent
    from realtime.pusher.adapter import run_inline
    from realtime.chat.video import Video, VisitorParty, check_ice_servers
    now = [1000.0]
    video = Video(None, None, None, ttl_s=60, clock=lambda: now[0])  # type: ignore[arg-type]
    call = run_inline(video._allocate("shop1", 7, "v1"))
    boss = Agent(service_id=7, business_id="shop1", level="service")
    assert run_inline(video.may_join_call(call.channel, boss))
    assert run_inline(video.may_join_call(call.channel, VisitorParty("shop1", "v1")))
    assert not run_inline(video.may_join_call(call.channel, VisitorParty("shop1", "v2")))
    assert not run_inline(video.may_join_call(call.channel, VisitorParty("shop2", "v1")))
    assert not run_inline(video.may_join_call(call.channel, Agent(8, "shop1", "manager")))
    assert not run_inline(video.may_join_call(call.channel, Agent(7, "shop2", "service")))
    assert not run_inline(video.may_join_call(call.channel, None))
    assert not run_inline(video.may_join_call("private-call-" + "0" * 32, boss))
    now[0] += 61
    assert not run_inline(video.may_join_call(call.channel, boss))

    assert check_ice_servers([]) == []
    assert check_ice_servers(ICE) == ICE
    for bad, key in (({"urls": "stun:x"}, "must be a list"),
                     ([{"urls": "http://x"}], "video.ice_servers[0].urls"),
                     ([{"urls": []}], "video.ice_servers[0].urls"),
                     ([{"urls": "stun:x", "password": "p"}], "video.ice_servers[0].password"),
                     (["stun:x"], "video.ice_servers[0]")):
        with pytest.raises((TypeError, ValueError), match=key.replace("[", r"\[")):
            check_ice_servers(bad)
    assert wolive.load_config(None).video.ice_servers == ()
    with pytest.raises(wolive.ConfigProblem, match=r"video.ice_servers\[0\].urls"):
        wolive.load_config(None, {"video.ice_servers": [{"urls": "ftp://x"}]})
