"""Reports for managers: per day and per agent, over a date range.

Built from `wolive_conversation` (store/reports.py) and `wolive_rating`. Definitions (also in
docs/api.md, "Reports"):

- a conversation belongs to the day it started (`started_at`), in the server's local time
  zone (as the history page's dates), and to the agent who had it last (`service_id`; 0:
  no agent ever had it);
- `conversations`: started in the range; `answered`: an agent had it (`assigned_at`);
  `missed`: it ended with the visitor leaving a message while waiting (nobody answered);
  `abandoned`: it ended while waiting, without a message (the window closed, or the
  visitor was blacklisted while waiting);
- `messages`: visitor and agent messages (text, image, file) of ended conversations;
- `first_response`: first agent reply − start; `resolution`: end − start of answered,
  ended conversations; `queue_wait`: assignment − start of answered ones; each as `median`
  and `p90` in whole seconds (null without values). The median of an even count is the
  mean of the two middle values; p90 is the nearest rank: the smallest value with at least
  90% of them at or below it;
- `ratings`, `rating_avg`: ratings given in the range (the day given, the rated agent).
"""
from __future__ import annotations

import asyncio
import csv
import io
import math
from bisect import bisect_right
from datetime import date, datetime, timedelta
from typing import Any

from store import NotFound, Store

from .dates import DATE_RE
from .errors import ChatError
from .values import Agent

#: Longest range of one report (days, both ends included).
MAX_DAYS = 366

#: Conversations above which a report's sums run in a thread (`asyncio.to_thread`).
AGGREGATE_IN_THREAD = 20_000

#: The timed measures, in the CSV's order.
TIMED = ("first_response", "resolution", "queue_wait")

#: CSV columns, in order.
CSV_COLUMNS = ("scope", "day", "service_id", "agent", "conversations", "answered", "missed",
               "abandoned", "messages", "first_response_median_s", "first_response_p90_s",
               "resolution_median_s", "resolution_p90_s", "queue_wait_median_s",
               "queue_wait_p90_s", "ratings", "rating_avg")


def median(values: list[int], ordered: bool = False) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None if empty.
    `ordered`: `values` are sorted already."""
    if not values:
        return None
    s = values if ordered else sorted(values)
    n = len(s)
    mid = n // 2
    return float(s[mid]) if n % 2 else (s[mid - 1] + s[mid]) / 2


def p90(values: list[int], ordered: bool = False) -> float | None:
    """Nearest-rank 90th percentile: the smallest value with at least 90% of the values at or
    below it; None if empty. `ordered`: `values` are sorted already."""
    if not values:
        return None
    s = values if ordered else sorted(values)
    return float(s[max(0, math.ceil(0.9 * len(s)) - 1)])


class _Group:
    """What is summed up for one day, one agent, or the whole range."""

    __slots__ = ("conversations", "answered", "missed", "abandoned", "messages", "first",
                 "resolution", "wait", "ratings", "score_sum")

    def __init__(self) -> None:
        self.conversations = self.answered = self.missed = self.abandoned = 0
        self.messages = self.ratings = self.score_sum = 0
        self.first: list[int] = []
        self.resolution: list[int] = []
        self.wait: list[int] = []

    def add(self, wait: int | None, reply: int | None, duration: int | None, missed: int,
            messages: int) -> None:
        """One conversation: seconds from its start to its assignment (`wait`), first reply,
        end (`duration`); None where that never happened."""
        self.conversations += 1
        self.messages += messages
        if wait is not None:
            self.answered += 1
            self.wait.append(wait)
            if duration is not None:
                self.resolution.append(duration)
        elif duration is not None:
            if missed:
                self.missed += 1
            else:
                self.abandoned += 1
        if reply is not None:
            self.first.append(reply)

    def rate(self, score: int) -> None:
        self.ratings += 1
        self.score_sum += score

    def out(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "conversations": self.conversations, "answered": self.answered,
            "missed": self.missed, "abandoned": self.abandoned, "messages": self.messages}
        for name, values in (("first_response", self.first), ("resolution", self.resolution),
                             ("queue_wait", self.wait)):
            values.sort()
            data[name] = {"median": median(values, ordered=True),
                          "p90": p90(values, ordered=True), "count": len(values)}
        data["ratings"] = self.ratings
        data["rating_avg"] = round(self.score_sum / self.ratings, 2) if self.ratings else None
        return data


def parse_day(name: str, raw: str) -> date:
    """A `YYYY-MM-DD` parameter. Raises `ChatError` 400."""
    raw = (raw or "").strip()
    if not DATE_RE.match(raw):
        raise ChatError(1, f"{name} must be a date YYYY-MM-DD", 400)
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise ChatError(1, f"{name}: no such date {raw!r}", 400) from None
    if not 1971 <= day.year <= 9998:
        raise ChatError(1, f"{name}: date {raw!r} out of range (1971-9998)", 400)
    return day


def _midnight(day: date) -> int:
    """Unix seconds of the start of `day` in the server's local time zone."""
    return int(datetime(day.year, day.month, day.day).timestamp())


class Reports:
    """The reports' use cases (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def scope(self, agent: Agent, business_id: str, service_id: int
                    ) -> tuple[str, int | None]:
        """Whose numbers `agent` asks for: `(business_id, service_id or None for all)`.
        A service agent: its own only (another agent's: 403). A manager: its business (another:
        403). A super_manager: any business (unknown: 404). An agent not of that business:
        404."""
        business_id = business_id or agent.business_id
        if business_id != agent.business_id:
            if agent.level != "super_manager":
                raise ChatError(1, "not your business / 无权访问其他商户", 403)
            try:
                await self.store.get_business(business_id)
            except NotFound:
                raise ChatError(1, f"no business {business_id!r}", 404) from None
        if agent.level == "service":
            if service_id and service_id != agent.service_id:
                raise ChatError(1, "a service agent sees only its own report / 只能查看自己的报表",
                                403)
            return business_id, agent.service_id
        if service_id:
            names = await self.store.agent_names(business_id)
            if service_id not in names:
                raise ChatError(1, f"no agent {service_id} in business {business_id!r}", 404)
            return business_id, service_id
        return business_id, None

    @staticmethod
    def days(raw_from: str, raw_to: str, today: date | None = None) -> tuple[date, date]:
        """The range asked for (both ends included): `from`, `to` (YYYY-MM-DD); the last 7
        days to today by default. Raises `ChatError` 400: a bad date, `from` after `to`,
        over `MAX_DAYS` days."""
        today = today or date.today()
        end = parse_day("to", raw_to) if (raw_to or "").strip() else today
        start = parse_day("from", raw_from) if (raw_from or "").strip() else \
            end - timedelta(days=6)
        if start > end:
            raise ChatError(1, "from is after to / 开始日期晚于结束日期", 400)
        if (end - start).days + 1 > MAX_DAYS:
            raise ChatError(1, f"the range is over {MAX_DAYS} days / 日期范围超过 {MAX_DAYS} 天",
                            400)
        return start, end

    async def report(self, agent: Agent, raw_from: str, raw_to: str, business_id: str = "",
                     service_id: int = 0) -> dict[str, Any]:
        """`{from, to, business_id, service_id, days: [{day, ...}], agents: [{service_id,
        nick_name, ...}], totals: {...}}` (the measures of `_Group.out`)."""
        start, end = self.days(raw_from, raw_to)
        business_id, only = await self.scope(agent, business_id, service_id)
        n_days = (end - start).days + 1
        starts = [_midnight(start + timedelta(days=i)) for i in range(n_days + 1)]
        since, until = starts[0], starts[-1]
        rows = await self.store.report_rows(business_id, since, until, only)
        ratings = await self.store.report_ratings(business_id, since, until, only)
        names = await self.store.agent_names(business_id)
        if len(rows) > AGGREGATE_IN_THREAD:
            # A long range of a big business: the sums and sorts (a few hundred ms for
            # 100,000 conversations) run in a thread, so the event loop keeps serving.
            out = await asyncio.to_thread(_aggregate, rows, ratings, names, starts, only)
        else:
            out = _aggregate(rows, ratings, names, starts, only)
        return {"from": start.isoformat(), "to": end.isoformat(), "business_id": business_id,
                "service_id": only or 0, **out}


def _aggregate(rows: list[tuple[Any, ...]], ratings: list[dict[str, Any]],
               names: dict[int, Any], starts: list[int], only: int | None) -> dict[str, Any]:
    """`{days, agents, totals}` from `Store.report_rows` / `report_ratings` rows; `starts`
    the days' first seconds (and the end of the last)."""
    n_days = len(starts) - 1
    days = [_Group() for _ in range(n_days)]
    agents: dict[int, _Group] = {}
    if only is not None:
        agents[only] = _Group()
    else:
        for sid in names:
            agents[sid] = _Group()
    total = _Group()
    for sid, started, wait, reply, duration, missed, messages in rows:
        i = bisect_right(starts, started) - 1
        group = agents.get(sid)
        if group is None:
            group = agents[sid] = _Group()
        for g in (days[i], group, total) if 0 <= i < n_days else (group, total):
            g.add(wait, reply, duration, missed, messages)
    for r in ratings:
        i = bisect_right(starts, r["timestamp"]) - 1
        if 0 <= i < n_days:
            days[i].rate(r["score"])
        group = agents.get(r["service_id"])
        if group is None:
            group = agents[r["service_id"]] = _Group()
        group.rate(r["score"])
        total.rate(r["score"])
    agent_rows = []
    for sid in sorted(agents):
        info = names.get(sid)
        agent_rows.append({"service_id": sid,
                           "nick_name": str(info["nick_name"]) if info else "",
                           "deleted": bool(sid and info is None), **agents[sid].out()})
    first_day = date.fromtimestamp(starts[0])
    return {"days": [{"day": (first_day + timedelta(days=i)).isoformat(), **g.out()}
                     for i, g in enumerate(days)],
            "agents": agent_rows, "totals": total.out()}


#: A cell starting with one of these is a formula to Excel and LibreOffice (OWASP, "CSV
#: Injection"): such text gets a leading `'`, which shows it as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """`text` made safe for a spreadsheet cell: `'` before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_row(scope: str, day: str, service_id: Any, name: str, g: dict[str, Any]) -> list[Any]:
    def num(v: Any) -> Any:
        return "" if v is None else (int(v) if isinstance(v, float) and v.is_integer() else v)

    row: list[Any] = [scope, day, service_id, name, g["conversations"], g["answered"],
                      g["missed"], g["abandoned"], g["messages"]]
    for measure in TIMED:
        row += [num(g[measure]["median"]), num(g[measure]["p90"])]
    return row + [g["ratings"], num(g["rating_avg"])]


def report_csv(data: dict[str, Any]) -> str:
    """`Reports.report`'s answer as CSV text (with a UTF-8 BOM, so Excel reads Chinese names):
    one row per day, one per agent, then the totals; times in seconds."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for d in data["days"]:
        w.writerow(_csv_row("day", d["day"], "", "", d))
    for a in data["agents"]:
        w.writerow(_csv_row("agent", "", a["service_id"], spreadsheet_text(a["nick_name"]), a))
    w.writerow(_csv_row("total", f"{data['from']}..{data['to']}", "", "", data["totals"]))
    return out.getvalue()
