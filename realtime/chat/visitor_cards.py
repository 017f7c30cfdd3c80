"""The visitor card: what the workbench's right column shows of a visitor (who, where from,
on what device, how often, the newest rating the agent may see) and the name / phone / note
agents keep about it (`store.visitors`, `wolive_visiter_info`).

Who may see or edit a card is the conversation rule (`Conversations._queue_for`): a
`service` agent its own visitors, a manager its business's. The place comes from
geoip2fast's bundled country data, the device from ua-parser.
"""
from __future__ import annotations

import functools
from typing import Any

from .facade import Chat
from .ratings import Ratings
from .values import Agent


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


class VisitorCards:
    """The visitor card use cases over one server's `Chat` and `Ratings`."""

    def __init__(self, chat: Chat, ratings: Ratings) -> None:
        self.chat = chat
        self.store = chat.store
        self.ratings = ratings

    async def card(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """The card of `visiter_id` for `agent`: `{visiter_id, visiter_name, avatar, channel,
        online, ip, place, from_url, referrer, user_agent, device, first_visit, last_visit
        (unix s), visits, name, tel, note, rating}` (`rating` None when there is none the
        agent may see). Raises `ChatError` 403 / 404 as the conversation rule does."""
        await self.chat._queue_for(agent, visiter_id, write=False)
        return await self._card(agent, visiter_id)

    async def edit(self, agent: Agent, visiter_id: str, values: dict[str, str]) -> dict[str, Any]:
        """Store `values` (a subset of `store.visitors.EDITABLE`, already checked for length)
        and return the card. Raises `ChatError` 403 / 404 as the conversation rule does for
        a write."""
        await self.chat._queue_for(agent, visiter_id, write=True)
        if values:
            await self.store.set_visitor_info(visiter_id, agent.business_id, **values)
        return await self._card(agent, visiter_id)

    async def _card(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        info = await self.store.visitor_info(visiter_id, agent.business_id) or {}
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
            "rating": await self.ratings.latest_for_agent(
                agent.service_id, agent.level, visiter_id, agent.business_id),
        }
