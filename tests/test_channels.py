"""realtime/chat/channels.py: the one place channel names are built, parsed and policed.

A source scan fails when Python (realtime/, handlers/, store/, wolive.py) or the pages
(static/assets/**/*.js, templates/) build a channel name by hand; the module's own builders,
parser and policy are checked against WoLive's names and the old patterns' edge cases.
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT

from realtime.chat import channels
from realtime.chat.agent_status import agent_channels
from realtime.chat.values import Agent
from realtime.pusher.hub import Caller
from realtime.pusher.protocol import valid_channel_name

# ---- nobody else builds a channel name -------------------------------------------------------

_PREFIX = (r"(?:kefu|ud|all|cu|se|presence-business-|private-agent-|"
           r"private-encrypted-agent-|private-call-)")
#: A hand-built channel name: a prefix in an f-string / template literal before the id, a
#: prefix string concatenated with something, a prefix cut off by length, or a regex that
#: matches a prefix followed by an id.
CONSTRUCTION = re.compile(
    r"\bf[\"']" + _PREFIX + r"\{"                          # f"kefu{sid}"
    r"|`" + _PREFIX + r"\$\{"                              # `kefu${id}`
    r"|[\"']" + _PREFIX + r"[\"']\s*\+"                    # "cu" + channel, 'kefu' + id
    r"|[\"']" + _PREFIX + r"(?:%s|%d|\{\})[\"']"           # "kefu%s" % sid, "ud{}".format
    r"|len\([\"']" + _PREFIX + r"[\"']\)"                  # ch[len("kefu"):]
    r"|startswith\([\"'](?:kefu|ud|all|cu|se)[\"']"        # channel.startswith("cu")
    r"|r[\"']\^?\(?(?:kefu|ud|all|cu|se)(?:\||\(|\\d|\[)"  # r"^kefu(\d+)$", r"^(kefu|ud)"
)


def _sources() -> list[Path]:
    root = Path(ROOT)
    python = [root / "wolive.py"] + [p for d in ("realtime", "handlers", "store")
                                     for p in sorted((root / d).rglob("*.py"))]
    pages = [p for p in sorted((root / "static").rglob("*.js")) if not p.name.endswith(".min.js")]
    templates = sorted((root / "templates").rglob("*.html"))
    return [p for p in python + pages + templates
            if p != root / "realtime" / "chat" / "channels.py"]


def construction_sites() -> list[str]:
    found = []
    for path in _sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if CONSTRUCTION.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return found


def test_no_channel_name_is_built_outside_the_channels_module() -> None:
    """Zero places outside realtime/chat/channels.py build a channel name: Python uses its
    functions, the pages the names the server gives them (boot data, event data)."""
    assert construction_sites() == []
    assert len(_sources()) > 60  # the scan does look at the code


@pytest.mark.parametrize("line", [
    'self.hub.trigger(f"kefu{sid}", "my-event", data)',
    "self.hub.trigger(f'cu{visitor[\"channel\"]}', 'queue', data)",
    'listener("cu" + visitor["channel"])',
    "var ud = pusher.subscribe('ud' + boot.service_id);",
    "pusher.subscribe('presence-business-' + boot.business_id);",
    "pusher.subscribe(`all${boot.business_id}`);",
    'int(ch[len("kefu"):])',
    'AGENT_CHANNEL = re.compile(r"^kefu(\\d{1,10})$")',
    'm = re.match(r"^(kefu|ud)(\\d+)$", channel)',
    'if row is None and channel.startswith("cu"):',
    'name = "private-call-" + secrets.token_hex(16)',
    'name = "kefu%s" % sid',
])
def test_the_scan_finds_hand_built_names(line: str) -> None:
    assert CONSTRUCTION.search(line)


@pytest.mark.parametrize("line", [
    "var kefu = pusher.subscribe(names.presence);",
    "/* `kefu{id}` `handover`: a notice */",
    "`all{business_id}` `on_notice` (the shape",
    "return self.select(all_rows)",
    'id="workerman-kefu"',
])
def test_the_scan_leaves_prose_and_other_code_alone(line: str) -> None:
    assert not CONSTRUCTION.search(line)


# ---- building and parsing ----------------------------------------------------------------------

VISITOR = "v" + "0123456789abcdef" * 2 + "01234567"
CALL_TOKEN = "0123456789abcdef" * 2


@pytest.mark.parametrize("name, kind, ident", [
    (channels.agent(12), channels.AGENT, 12),
    (channels.agent_notices(12), channels.AGENT_NOTICES, 12),
    (channels.business("shop1"), channels.BUSINESS, "shop1"),
    (channels.visitor(VISITOR), channels.VISITOR, VISITOR),
    (channels.agent_state(7), channels.AGENT_STATE, 7),
    (channels.team("shop-1.a_b"), channels.TEAM, "shop-1.a_b"),
    (channels.private_agent(3), channels.PRIVATE_AGENT, 3),
    (channels.encrypted_agent(3), channels.ENCRYPTED_AGENT, 3),
    (channels.call(CALL_TOKEN), channels.CALL, CALL_TOKEN),
])
def test_each_kind_round_trips(name: str, kind: str, ident: object) -> None:
    assert channels.parse(name) == channels.Named(kind, ident)
    assert valid_channel_name(name)
    assert channels.PATTERNS[kind].fullmatch(name)


def test_names_are_wolives() -> None:
    """The WoLive document's names: 'kefu' + the agent's id, 'ud' + id, 'all' + the
    business, "cu" + the visitor's channel, "se" + the agent's id."""
    assert channels.agent(12) == "kefu12"
    assert channels.agent_notices(12) == "ud12"
    assert channels.business("admin") == "alladmin"
    assert channels.visitor("vabc") == "cuvabc"
    assert channels.agent_state(12) == "se12"
    assert channels.team("admin") == "presence-business-admin"
    assert agent_channels(5, "shop1") == {"presence": "kefu5", "own": "ud5",
                                          "team": "presence-business-shop1",
                                          "business": "allshop1"}
    call = channels.new_call()
    assert channels.parse(call) == channels.Named(channels.CALL, call[len(channels.CALL_PREFIX):])
    assert channels.new_call() != call


@pytest.mark.parametrize("name", [
    "kefu", "kefu12345678901",          # a service_id is at most 10 digits (int(11))
    "kefu12a", "kefu-1", "kefu\u0663",   # ASCII digits only
    "ud", "se1x", "kefu12\n",
    "cu", "cuv" + "0" * 39, "cuv" + "0" * 41, "cuV" + "0" * 40, "cuv" + "A" * 40,
    "cu" + "0" * 40,                      # no leading v
    "all", "all" + "a" * 101, "allshop 1", "allshop:1",
    "presence-business-", "private-agent-x", "private-call-" + "0" * 31,
    "private-call-" + "G" * 32, "private-channel", "my-channel", "", "seedmsg",
])
def test_the_patterns_reject(name: str) -> None:
    assert channels.parse(name) is None


def test_is_kind_and_visitor_part() -> None:
    assert channels.is_kind("kefu1", channels.AGENT, channels.VISITOR)
    assert not channels.is_kind("kefu1", channels.VISITOR)
    assert not channels.is_kind("nope", channels.AGENT)
    assert channels.visitor_part("cu" + VISITOR) == VISITOR
    assert channels.visitor_part("culegacy") == "legacy"  # lenient: a lookup, not a check
    assert channels.visitor_part(VISITOR) is None


# ---- the policy ------------------------------------------------------------------------------

AGENT = Caller(service_id=12, business_id="shop1")
VISITOR_CALLER = Caller()


@pytest.mark.parametrize("caller, name, allowed", [
    (AGENT, "kefu12", True), (AGENT, "ud12", True), (AGENT, "kefu012", True),
    (AGENT, "kefu13", False), (AGENT, "ud13", False),
    (AGENT, "kefu" + "1" * 11, False), (AGENT, "ud" + "9" * 20, False),
    (VISITOR_CALLER, "kefu12", False), (VISITOR_CALLER, "ud12", False),
    (AGENT, "allshop1", True), (AGENT, "allshop2", False), (AGENT, "allfoo", False),
    (VISITOR_CALLER, "allshop1", False), (VISITOR_CALLER, "all", False),
    (VISITOR_CALLER, "cu" + VISITOR, True), (AGENT, "cu" + VISITOR, True),
    (VISITOR_CALLER, "se12", True), (VISITOR_CALLER, "my-channel", True),
    (VISITOR_CALLER, "kefux", True),  # not an agent's channel: a public one of an app
])
def test_subscription_refusal(caller: Caller, name: str, allowed: bool) -> None:
    assert (channels.subscription_refusal(caller, name) is None) is allowed


def test_may_join() -> None:
    agent = Agent(12, "shop1", "service", nick_name="Anna", avatar="/a.png")
    assert channels.may_join(agent, "private-agent-12") == {}
    assert channels.may_join(agent, "private-encrypted-agent-12") == {}
    assert channels.may_join(agent, "presence-business-shop1") == {
        "user_id": "12", "user_info": {"nick_name": "Anna", "avatar": "/a.png"}}
    for name in ("private-agent-13", "private-encrypted-agent-13", "presence-business-shop2",
                 "private-call-" + CALL_TOKEN, "kefu12", "private-other"):
        assert channels.may_join(agent, name) is None
    assert channels.may_join(None, "private-agent-12") is None
    other = SimpleNamespace(service_id=13, business_id="shop1", nick_name="", avatar="")
    assert channels.may_join(other, "private-agent-12") is None


@pytest.mark.parametrize("name", ["news\n", "news\r\n", "\nnews", "ne ws", ""])
def test_a_name_with_a_line_break_or_space_is_not_a_channel(name: str) -> None:
    """Pusher's channel names are [A-Za-z0-9_\\-=@,.;]+ and nothing else: a trailing
    newline is refused too (a `$` anchor would let it through)."""
    from realtime.pusher.protocol import valid_user_id
    assert not valid_channel_name(name)
    assert not valid_channel_name("#server-to-user-" + name)
    assert not valid_user_id(name)
