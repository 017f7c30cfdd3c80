"""TLS and WoLive's own ports: with a certificate in config every listener speaks
https/wss; 9090-style (WebSocket) and 2080-style (HTTP API) ports serve their part."""
from __future__ import annotations

import asyncio
import json
import ssl
import sys
import subprocess
from pathlib import Path
from typing import Iterator

import pusher
import pytest
from tornado.httpclient import HTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from conftest import ROOT, RunningServer, start_server, stop_server, write_config


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    cert, key = make_cert(tmp_path)
    server = start_server(tmp_path, f"sqlite:///{tmp_path}/w.db", tls_cert=str(cert),
                          tls_key=str(key), legacy_ws_port=0, legacy_api_port=0)
    yield server, cert
    assert stop_server(server) == 0, server.logs()


def test_tls_everywhere_and_legacy_ports(tls_server: tuple[RunningServer, Path]) -> None:
    server, cert = tls_server
    assert server.base_url.startswith("https://")
    assert server.ports["legacy_ws"].startswith("https://")
    ctx = ssl.create_default_context(cafile=str(cert))
    http = HTTPClient()
    try:
        resp = http.fetch(HTTPRequest(server.base_url + "/admin/login/index", ssl_options=ctx))
        assert resp.code == 200
        # Plain http on a TLS port does not work.
        with pytest.raises(Exception):
            http.fetch(server.base_url.replace("https", "http") + "/admin/login/index",
                       request_timeout=3)
        # The 9090-style port serves the socket only; the 2080-style one the API only.
        with pytest.raises(HTTPClientError) as info:
            http.fetch(HTTPRequest(server.ports["legacy_ws"] + "/admin/login/index",
                                   ssl_options=ctx))
        assert info.value.code == 404
    finally:
        http.close()

    async def socket_over_wss() -> dict:
        url = server.ports["legacy_ws"].replace("https", "wss") + "/app/wolive?protocol=7"
        conn = await websocket_connect(HTTPRequest(url, ssl_options=ctx))
        frame = json.loads(await conn.read_message())
        conn.close()
        return frame
    frame = asyncio.run(socket_over_wss())
    assert frame["event"] == "pusher:connection_established"

    # The official library publishes over https to the 2080-style port.
    secrets = json.loads((server.config_path.parent / "data" / "secrets.json").read_text())
    api = server.ports["legacy_api"]
    client = pusher.Pusher(app_id="1", key="wolive", secret=secrets["app_secret_1"],
                           host="127.0.0.1", port=int(api.rsplit(":", 1)[1]), ssl=True)
    client._pusher_client.http.options["verify"] = str(cert)  # trust our test certificate
    assert client.trigger("news", "hello", {"a": 1}) == {}


def test_tls_config_errors(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    for extra, needle in [({"tls_cert": str(cert)},
                           "server.tls_cert: tls_cert and tls_key go together"),
                          ({"tls_cert": str(cert), "tls_key": str(tmp_path / "none.pem")},
                           "server.tls_key: cannot read"),
                          ({"tls_cert": str(key), "tls_key": str(key)},
                           "server.tls_cert: cannot load")]:
        config = write_config(tmp_path, f"sqlite:///{tmp_path}/w.db", **extra)
        result = subprocess.run([sys.executable, str(ROOT / "wolive.py"), "--config",
                                 str(config)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr
