"""The demo site: a host page on another origin (its own port) with the WoLive snippet pasted
in, so anyone can try the floating button as a site owner's visitors would."""
from __future__ import annotations

import os
from typing import Any

import tornado.web

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "templates")


class DemoPage(tornado.web.RequestHandler):
    def initialize(self, wolive: Any) -> None:
        self.wolive = wolive

    def get(self) -> None:
        cfg = self.wolive.config.server
        ports = self.wolive.services.ports
        base = cfg.public_url.rstrip("/") or \
            f"{self.request.protocol}://{self.request.host_name}:{ports.get('main', cfg.port)}"
        # `?mode=popup`: the snippet with WoLive's popup window instead of the in-page panel.
        mode = "popup" if self.get_query_argument("mode", "") == "popup" else ""
        self.render("demo.html", base=base, mode=mode,
                    business_id=self.get_query_argument("business_id", "admin")[:100])

    head = get


def make_demo_app(wolive: Any) -> tornado.web.Application:
    return tornado.web.Application([(r"/", DemoPage, {"wolive": wolive})],
                                   template_path=TEMPLATES)
