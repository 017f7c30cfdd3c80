"""Exactly once, in order (issue 9, item 7): what each side of a chat shows after the server
is killed and restarted mid-conversation, and the order in which the server pushes a
conversation's messages.

The browser test drives the pages themselves (the agent console and the visitor window in
Chromium, so the catch-up code under test is the pages' own): both sides write through their
composers at a steady pace, the server gets SIGKILL partway and starts again on the same port,
and at the end each side must show every message of the other side that is stored — every
acknowledged one among them — exactly once, in cid order.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import RunningServer, start_server
from helpers import db_rows
from shop import Shop
from test_e2e_browser import (POPUP, PageProblems, agent_login, browser,  # noqa: F401
                              new_context, problems, shot)
from test_ui_workbench import conv, png, visitor_call, visitor_page

#: Messages each side writes; the server is killed once the agent has had KILL_AT answered.
PER_SIDE = 150
KILL_AT = 40
#: Messages the second visitor writes (its conversation stays closed in the console).
OTHER_COUNT = 40
#: Pause between one answered send and the next (ms): ~25 messages/s per side while up.
PACE_MS = 30
#: How long the pages may take to show everything once both have finished writing.
SETTLE_S = 40

DRIVE = """([prefix, count, pace]) => {
  /* Write `count` messages through the page's own composer, one after the other: each one
   * is answered (the box is usable again) before the next; answered = the box was emptied.
   * A send that fails (no answer, or refused) is tried again until it is acknowledged. */
  const input = document.getElementById('input');
  const form = document.getElementById('composer');
  const d = window.__drive = { acked: [], failed: 0, done: false };
  const answered = () => new Promise((resolve) => {
    if (!input.disabled) { resolve(); return; }
    const watch = new MutationObserver(() => {
      if (!input.disabled) { watch.disconnect(); resolve(); }
    });
    watch.observe(input, { attributes: true, attributeFilter: ['disabled'] });
  });
  (async () => {
    for (let i = 0; i < count; i++) {
      const text = prefix + i;
      for (;;) {  // not answered (the server is down): the same text again, a little later
        input.value = text;
        form.requestSubmit();
        await answered();
        if (input.value === '') { d.acked.push(text); break; }
        d.failed++;
        await new Promise((r) => setTimeout(r, pace * 5));
      }
      await new Promise((r) => setTimeout(r, pace));
    }
    d.done = true;
  })();
}"""

SHOWN = """(box) => Array.from(document.querySelectorAll(box + ' .msg[data-cid]')).map((r) => [
  Number(r.dataset.cid), r.classList.contains('mine'), r.querySelector('.bubble').textContent])"""


def shown(page: Any, box: str) -> list[tuple[int, bool, str]]:
    return [tuple(x) for x in page.evaluate(SHOWN, box)]  # type: ignore[misc]


def check_side(rows: list[tuple[int, bool, str]], theirs_db: list[dict[str, Any]],
               acked_by_other: list[str], who: str) -> None:
    cids = [r[0] for r in rows]
    assert cids == sorted(set(cids)), f"{who}: rows not in cid order or repeated: {cids}"
    theirs = [(r[0], r[2]) for r in rows if not r[1]]
    want = [(int(r["cid"]), r["content"]) for r in theirs_db]
    missing = sorted(set(want) - set(theirs))
    extra = sorted(set(theirs) - set(want))
    assert not missing and not extra, \
        f"{who}: {len(missing)} of {len(want)} never shown: {missing[:20]}; not stored: {extra}"
    assert theirs == want
    stored = {r["content"] for r in theirs_db}
    lost = [t for t in acked_by_other if t not in stored]
    assert not lost, f"acknowledged but not stored: {lost}"


# ---- the server's side: a conversation's pushes follow its cids ---------------------------
# (First in the file: the browser tests' module-wide Playwright keeps an event loop running.)

@pytest.mark.gen_test(timeout=60)
async def test_a_conversations_messages_are_pushed_in_cid_order(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """Both sides send at once, many times over; one socket hears both directions on each of
    the agent's `kefu{id}` and the visitor's `cu{channel}` (each carries both: a side's own
    messages reach its other tabs): on each channel the cids it hears only go up."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna = await s.agent("anna")
    sock = await s.online(anna)
    v = await s.visitor("v1")
    assert (await s.notice(v, special=str(anna.sid)))["data"]["service_id"] == anna.sid
    assert (await sock.subscribe("cu" + v.boot["channel"]))["event"].endswith("succeeded")

    rounds = 150

    async def visitor_says(i: int) -> int:
        code, body = await v.client.json("/admin/event/chats", "POST",
                                         form={**v.ids, "content": f"v{i}"})
        assert code == 200 and body["code"] == 0, body
        return int(body["data"]["cid"])

    async def agent_says(i: int) -> int:
        code, body = await anna.client.json("/admin/set/chats", "POST",
                                            form={"visiter_id": "v1", "content": f"a{i}"})
        assert code == 200 and body["code"] == 0, body
        return int(body["data"]["cid"])

    sent: list[int] = []
    for i in range(rounds):
        sent += await asyncio.gather(visitor_says(i), agent_says(i))
    heard: dict[str, list[int]] = {f"kefu{anna.sid}": [], "cu" + v.boot["channel"]: []}
    deadline = time.monotonic() + 20
    while min(map(len, heard.values())) < len(sent) and time.monotonic() < deadline:
        frame = await sock.recv(5.0)
        if frame.get("event") in ("cu-event", "my-event") and frame.get("channel") in heard:
            heard[frame["channel"]].append(int(frame["data"]["message"]["cid"]))
    for channel, cids in heard.items():
        assert sorted(cids) == sorted(sent), channel
        out_of_order = [(a, b) for a, b in zip(cids, cids[1:]) if b < a]
        assert not out_of_order, f"{channel}: pushed out of cid order: {out_of_order}"


@pytest.mark.gen_test(timeout=10)
async def test_conversation_order_one_writer_at_a_time_and_nothing_kept() -> None:
    """Writers of one conversation take turns in arrival order; another conversation does
    not wait; no lock is kept once nobody holds or waits for it."""
    from realtime.ordering import ConversationOrder
    order = ConversationOrder()
    log: list[str] = []
    release = asyncio.Event()

    async def write(vid: str, tag: str, wait: bool = False) -> None:
        async with order.hold("shop1", vid):
            log.append(f"{tag}+")
            if wait:
                await release.wait()
            log.append(f"{tag}-")

    first = asyncio.ensure_future(write("v1", "a", wait=True))
    await asyncio.sleep(0)  # let it take the turn
    second = asyncio.ensure_future(write("v1", "b"))
    await write("v2", "c")  # another conversation: not held up by "a"
    assert log == ["a+", "c+", "c-"] and order.busy() == 1
    release.set()
    await asyncio.gather(first, second)
    assert log == ["a+", "c+", "c-", "a-", "b+", "b-"]
    assert order.busy() == 0
    with pytest.raises(ValueError):
        async with order.hold("shop1", "v1"):
            raise ValueError("write failed")
    assert order.busy() == 0


@pytest.mark.gen_test(timeout=10)
async def test_conversation_order_is_reentrant_in_one_task_and_holds_others_off() -> None:
    """A use case holding a conversation's turn (a close: its state and its "ended" line)
    takes it again for the line without waiting for itself; another task's writer of that
    conversation waits until the outer hold ends; the cluster turn is taken once."""
    from contextlib import asynccontextmanager

    from realtime.ordering import ConversationOrder
    turns: list[str] = []

    @asynccontextmanager
    async def turn(key: str) -> Any:
        turns.append(key)
        yield

    order = ConversationOrder(turn=turn)
    log: list[str] = []
    inner_done = asyncio.Event()
    go_on = asyncio.Event()

    async def close() -> None:
        async with order.hold("shop1", "v1"):
            log.append("state")
            async with order.hold("shop1", "v1"):
                log.append("line")
            inner_done.set()
            await go_on.wait()
            log.append("close-")

    async def other() -> None:
        async with order.hold("shop1", "v1"):
            log.append("other")

    closing = asyncio.ensure_future(close())
    await asyncio.wait_for(inner_done.wait(), 5)
    waiting = asyncio.ensure_future(other())
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["state", "line"]
    go_on.set()
    await asyncio.gather(closing, waiting)
    assert log == ["state", "line", "close-", "other"]
    assert len(turns) == 2 and order.busy() == 0


# ---- the pages: a SIGKILL restart mid-chat ------------------------------------------------

@pytest.mark.browser
@pytest.mark.e2e
def test_nothing_goes_unseen_when_the_server_is_killed_mid_chat(
        tmp_path: Path, db_url: str,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = start_server(tmp_path, db_url)
    second: RunningServer | None = None
    try:
        boss = new_context("boss").new_page()
        agent_login(boss, server)
        v = visitor_page(new_context("visitor", viewport=POPUP), server, "v-once", "一次")
        expect(v.locator("#agent-name")).to_have_text("boss")
        expect(v.locator("#input")).to_be_enabled()
        expect(conv(boss, "v-once")).to_be_visible()
        conv(boss, "v-once").click()
        expect(boss.locator("#input")).to_be_enabled()

        # A second visitor writes too; the console never opens that conversation, so only its
        # list entry (unread badge, last message) shows it.
        other = visitor_page(new_context("other", viewport=POPUP), server, "v-other", "另一位")
        expect(other.locator("#input")).to_be_enabled()
        expect(conv(boss, "v-other")).to_be_visible()

        v.evaluate(DRIVE, ["V", PER_SIDE, PACE_MS])
        boss.evaluate(DRIVE, ["A", PER_SIDE, PACE_MS])
        other.evaluate(DRIVE, ["O", OTHER_COUNT, PACE_MS * 5])
        boss.wait_for_function(f"window.__drive.acked.length >= {KILL_AT}", timeout=60_000)
        server.proc.kill()  # SIGKILL: no goodbye to the sockets, no drain
        server.proc.wait()
        port = int(server.base_url.rsplit(":", 1)[1])
        second = start_server(tmp_path, db_url, create_admin=False, port=port)

        for page in (boss, v, other):
            page.wait_for_function("window.__drive.done", timeout=120_000)
        acked_v = v.evaluate("window.__drive.acked")
        acked_a = boss.evaluate("window.__drive.acked")
        assert len(acked_v) == len(acked_a) == PER_SIDE, (len(acked_v), len(acked_a))
        assert v.evaluate("window.__drive.failed") + boss.evaluate("window.__drive.failed") > 0
        rows = db_rows(db_url, "SELECT cid, content, direction FROM wolive_chats "
                               "WHERE visiter_id = %s ORDER BY cid", ("v-once",))
        to_agent = [r for r in rows if r["direction"] == "to_service"]
        to_visitor = [r for r in rows if r["direction"] == "to_visiter"]
        # Each page shows as many of the other side's messages as are stored: wait for that
        # (it never happens when one went unseen), then compare them one by one.
        for page, box, want in ((boss, "#messages", len(to_agent)),
                                (v, "#messages", len(to_visitor))):
            try:
                page.wait_for_function(
                    "([box, n]) => document.querySelectorAll(box + ' .msg.theirs[data-cid]')"
                    ".length >= n", arg=[box, want], timeout=SETTLE_S * 1000)
            except Exception:  # the comparison below says what is missing
                pass
        check_side(shown(boss, "#messages"), to_agent, acked_v, "agent console")
        check_side(shown(v, "#messages"), to_visitor, acked_a, "visitor window")
        # The other conversation: as many unread as it has stored, its last one previewed.
        theirs = db_rows(db_url, "SELECT content FROM wolive_chats WHERE visiter_id = %s "
                                 "ORDER BY cid", ("v-other",))
        assert len(theirs) >= len(other.evaluate("window.__drive.acked")) > 0
        entry = conv(boss, "v-other")
        expect(entry.locator(".badge")).to_have_text(str(len(theirs)), timeout=SETTLE_S * 1000)
        expect(entry.locator(".last")).to_have_text(theirs[-1]["content"])
        shot(boss, "exactly-once-console")
        shot(v, "exactly-once-visitor")
    finally:
        if second is not None:
            second.proc.kill()
            second.proc.wait()
        elif server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    # While the server was down or dying, requests and the sockets failed: expected.
    problems.check(allow=r"request failed|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|"
                         r"ERR_CONNECTION_RESET|WebSocket")


# ---- polish: read ticks after a reload, the agent's own image in view ----------------------

@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_read_ticks_survive_a_reload_and_the_own_image_is_scrolled_into_view(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss").new_page()
    agent_login(boss, server)
    v = visitor_page(new_context("visitor", viewport=POPUP), server, "v-tick", "打勾")
    expect(v.locator("#input")).to_be_enabled()
    for n in range(25):  # enough to scroll
        assert visitor_call(v, "/admin/event/chats", content=f"第{n}条")["code"] == 0
    conv(boss, "v-tick").click()
    expect(boss.locator("#messages .msg.theirs")).to_have_count(25)
    boss.locator("#input").fill("收到")
    boss.locator("#input").press("Enter")
    expect(v.locator(".msg.theirs .bubble").last).to_have_text("收到")
    # The visitor's window is open and visible: it reads the reply, the agent sees ✓✓.
    tick = boss.locator("#messages .msg.mine .tick")
    expect(tick).to_have_class(re.compile(r"\bread\b"))

    boss.reload()
    conv(boss, "v-tick").click()
    expect(boss.locator("#messages .msg.mine .bubble")).to_have_text(["收到"])
    expect(tick).to_have_text("已读")  # from the server's read state, not from memory
    expect(tick).to_have_class(re.compile(r"\bread\b"))
    shot(boss, "read-ticks-after-reload")

    # Again, with the list reloaded while the conversation's history is on its way (a
    # visitor arriving, a reconnect): the ticks do not belong to the list's entries.
    boss.reload()
    expect(conv(boss, "v-tick")).to_be_visible()
    held: list[Any] = []
    boss.route("**/admin/set/history*", lambda route: held.append(route))
    with boss.expect_request("**/admin/set/history*"):
        conv(boss, "v-tick").click()
    boss.evaluate("window.__entry = window.woliveConsole.convs['v-tick']")
    boss_sid = boss.evaluate("window.woliveConsole.boot.service_id")
    assert visitor_call(v, "/admin/event/notice", special=boss_sid)["code"] == 0
    boss.wait_for_function("window.woliveConsole.convs['v-tick'] && "
                           "window.woliveConsole.convs['v-tick'] !== window.__entry")
    assert len(held) == 1
    held[0].continue_()
    boss.unroute("**/admin/set/history*")
    expect(boss.locator("#messages .msg.mine .bubble")).to_have_text(["收到"])
    expect(tick).to_have_text("已读")

    # The agent's own image: once it has loaded, the list is at its bottom (the image seen).
    boss.locator("#pick-image").set_input_files(
        files=[{"name": "tall.png", "mimeType": "image/png", "buffer": png(200, 400)}])
    img = boss.locator("#messages .msg.mine .bubble.image img")
    expect(img).to_have_count(1)
    boss.wait_for_function("""() => {
        const img = document.querySelector('#messages .msg.mine .bubble.image img');
        const box = document.getElementById('messages');
        return img && img.complete && img.naturalHeight > 0 &&
               box.scrollHeight - box.scrollTop - box.clientHeight < 2;
    }""", timeout=10_000)
    shot(boss, "own-image-in-view")
    problems.check()
