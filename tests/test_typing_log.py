"""A typing signal over the rate limit (issue 9): an ordinary answer, logged at INFO, not a
warning per request (the pages throttle their own signals, static/assets/js/typing.js; the
browser side is tests/test_ui_polish.py). In-process server, both databases; and the pages'
throttle itself under Node on a virtual clock."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from shop import post
from test_workbench_api import Workbench


@pytest.mark.gen_test(timeout=30)
async def test_typing_429_is_not_a_warning(workbench: Workbench,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A typing signal over the limit is an ordinary answer: INFO in the access log, while
    other refusals stay warnings."""
    s, ag, v1 = workbench
    anna = ag["anna"]
    caplog.set_level(logging.DEBUG, logger="tornado.access")
    statuses = []
    flags = ("1", "0", "1", "0", "1")  # the fifth within two seconds is over the limit
    for flag in flags:
        code, _body = await post(anna, "/admin/set/typing", visiter_id="v1", typing=flag)
        statuses.append(code)
    for flag in flags:
        code, _body = await v1.client.json("/admin/event/typing", "POST",
                                           form={**v1.ids, "typing": flag})
        statuses.append(code)
    assert statuses == [200, 200, 200, 200, 429] * 2
    limited = [r for r in caplog.records if r.name == "tornado.access" and
               r.getMessage().startswith("429 ")]
    assert len(limited) == 2, [r.getMessage() for r in caplog.records]
    assert {r.levelno for r in limited} == {logging.INFO}
    # Another refusal of the same URL (a bad flag) is still a warning.
    code, _body = await post(anna, "/admin/set/typing", visiter_id="v1", typing="maybe")
    assert code == 400
    bad = [r for r in caplog.records if r.getMessage().startswith("400 ")]
    assert bad and bad[-1].levelno == logging.WARNING
    del s


def test_the_pages_typing_throttle_stays_under_the_limit() -> None:
    """The pages' own throttle (static/assets/js/typing.js, loaded as the pages load it) on a
    virtual clock, 300 seeded human-paced runs of keys, sent lines, conversation switches
    and pauses (tests/node/typing_throttle.js): never more than 2 signals in any second,
    never two within the gap, no "typing" left shown, a steady typist refreshed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (install Node 20+)")
    script = Path(__file__).resolve().parent / "node" / "typing_throttle.js"
    proc = subprocess.run([node, str(script)], capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"], summary["problems"]
    assert summary["signals"] > 1000, summary
