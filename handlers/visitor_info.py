"""`/admin/set/visitor`: what the workbench's right column shows of a visitor, and the
name / phone / note an agent keeps about it (`store.visitors`)."""
from __future__ import annotations

import functools
from typing import Any

from realtime.chat.ratings import Ratings
from store.visitors import EDITABLE

from .base import AgentApiHandler


@functools.lru_cache(maxsize=1)
def _geoip() -> Any:
    from geoip2fast import GeoIP2Fast  # its country data ships inside the package
    return GeoIP2Fast(verbose=False)


@functools.lru_cache(maxsize=4096)
def place_of(ip: str) -> str:
    """The country of an IP address, e.g. "China (CN)"; "Localhost" / "Private Network ..."
    for local addresses; "" when unknown or not an address (geoip2fast's bundled data)."""
    if not ip:
        return ""
    try:
        found = _geoip().lookup(ip)
    except Exception:  # a malformed address is simply unknown
        return ""
    if getattr(found, "is_private", False):
        return str(found.country_name)
    code = str(getattr(found, "country_code", "") or "")
    if not code or code == "--":
        return ""
    return f"{found.country_name} ({code})"


@functools.lru_cache(maxsize=2048)
def parse_user_agent(ua: str) -> dict[str, Any]:
    """`{browser, os, device, mobile}` from a User-Agent (ua-parser); empty strings when
    unknown."""
    if not ua:
        return {"browser": "", "os": "", "device": "", "mobile": False}
    from ua_parser import parse

    r = parse(ua)

    def name(part: Any) -> str:
        if part is None:
            return ""
        return " ".join(str(x) for x in (part.family, part.major) if x and x != "Other")

    device = ""
    if r.device is not None and r.device.family not in ("Other", ""):
        device = r.device.family
    low = ua.lower()
    mobile = any(w in low for w in ("mobile", "iphone", "android", "ipad"))
    return {"browser": name(r.user_agent), "os": name(r.os), "device": device,
            "mobile": mobile}


class VisitorInfoHandler(AgentApiHandler):
    """GET `visiter_id` (or `channel`): the visitor's card. POST also `name`, `tel`, `note`
    (only those sent change)."""

    async def card(self, visiter_id: str) -> dict[str, Any]:
        visitor = await self.store.get_visiter(visiter_id, self.agent.business_id)
        info = await self.store.visitor_info(visiter_id, self.agent.business_id) or {}
        ua = info.get("user_agent", "") or ""
        return {
            "visiter_id": visiter_id, "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "online": visitor["state"] == "online", "ip": visitor["ip"],
            "place": place_of(visitor["ip"]),
            "from_url": visitor["from_url"], "referrer": info.get("referrer", "") or "",
            "user_agent": ua, "device": parse_user_agent(ua),
            "first_visit": int(info.get("first_visit") or 0),
            "last_visit": int(info.get("last_visit") or 0),
            "visits": int(info.get("visits") or 0),
            "name": info.get("name", "") or "", "tel": info.get("tel", "") or "",
            "note": info.get("note", "") or "",
            # The newest rating this agent may see (issue 9), or None.
            "rating": await Ratings(self.chat).latest_for_agent(
                self.agent.service_id, self.agent.level, visiter_id, self.agent.business_id),
        }

    async def visiter(self, write: bool) -> str:
        vid = await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))
        await self.chat._queue_for(self.agent, vid, write=write)
        return vid

    async def get(self) -> None:
        self.answer(0, "", await self.card(await self.visiter(write=False)))

    async def post(self) -> None:
        vid = await self.visiter(write=True)
        values = {k: self.arg(k, max_len=n).strip() for k, n in EDITABLE.items()
                  if k in self.body_args()}
        if values:
            await self.store.set_visitor_info(vid, self.agent.business_id, **values)
        self.answer(0, "success", await self.card(vid))


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/set/visitor", VisitorInfoHandler)]
