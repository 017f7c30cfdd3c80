"""The WoLive document's client snippet, pasted as written into a site's page, works in
Chromium against `/assets/libs/push/pusher.min.js` and WoLive's 9090-style socket port;
the document's server call (trigger `my-channel`) reaches it through the 2080-style port."""
from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pusher
import pytest

from conftest import RunningServer, start_server, stop_server
from test_e2e_browser import browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

#: The document's "客户端" snippet, verbatim but for the host, port and alert capture.
SNIPPET = """<!doctype html><html><head><meta charset="utf-8">
<script src="%(base)s/assets/libs/push/pusher.min.js"></script></head><body>
<script>
  // app_key 就是安装步骤中的app_key
  var app_key = '%(key)s';
  var pusher = new Pusher(app_key, {
                encrypted: false
                , enabledTransports: ['ws']
                , wsHost: '%(host)s'
                , wsPort: %(port)s
        });

// 订阅频道 my-channel
var channel = pusher.subscribe('my-channel');

// 监听该频道中 sendmsg 事件
channel.bind('sendmsg', function(data) {
        // 这里会接受到 data：{message:'hello'}
        alert(data.message);
    });
</script></body></html>"""


class SiteServer:
    """A site owner's web server on a free port, serving one page."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def legacy_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, f"sqlite:///{tmp_path}/w.db", legacy_ws_port=0,
                          legacy_api_port=0)
    yield server
    assert stop_server(server) == 0, server.logs()


def test_documents_client_snippet_as_written(browser: Any,  # noqa: F811 (the fixture)
                                             legacy_server: RunningServer) -> None:
    server = legacy_server
    ws_port = int(server.ports["legacy_ws"].rsplit(":", 1)[1])
    api_port = int(server.ports["legacy_api"].rsplit(":", 1)[1])
    secrets = json.loads((server.config_path.parent / "data" / "secrets.json").read_text())
    html = SNIPPET % {"base": server.base_url, "key": "wolive", "host": "127.0.0.1",
                      "port": ws_port}
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    alerts: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append("console: " + m.text))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}"))
    page.on("dialog", lambda d: (alerts.append(d.message), d.accept()))
    # The page lives on a site owner's own server (another origin), not on wolive's.
    site = SiteServer(html)
    try:
        page.goto(site.url)
        client = pusher.Pusher(app_id="1", key="wolive", secret=secrets["app_secret_1"],
                               host="127.0.0.1", port=api_port, ssl=False)
        deadline = time.monotonic() + 15
        while not alerts and time.monotonic() < deadline:
            client.trigger("my-channel", "sendmsg", {"message": "hello"})
            page.wait_for_timeout(200)
    finally:
        context.close()
        site.close()
    assert errors == []
    assert alerts and alerts[0] == "hello"
