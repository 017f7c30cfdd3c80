"""Uploads: images checked by content, files stored under random names and served as
downloads, the 18 MB limit, visitor and agent auth, uploads becoming chat messages."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

MB = 1024 * 1024


# ---- files made here ---------------------------------------------------------------------

def png_bytes(width: int = 3, height: int = 2, bomb: bool = False) -> bytes:
    """A real PNG (RGB, 8 bit), made with zlib + struct. `bomb`: the header claims
    `width` x `height` but the pixel data is empty (what a decompression bomb's header
    looks like, without the wait)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    rows = b"" if bomb else b"".join(b"\x00" + bytes([200, 30, 30]) * width
                                     for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_bytes(width: int = 4, height: int = 3) -> bytes:
    """A real baseline JPEG (grey, one flat colour): quantisation and Huffman tables with a
    single code each, every block "DC diff 0, end of block"."""
    def seg(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    return (b"\xff\xd8" + seg(0xDB, b"\x00" + b"\x01" * 64)
            + seg(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00")
            + seg(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x00")
            + seg(0xC4, b"\x10\x01" + b"\x00" * 15 + b"\x00")
            + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00") + scan + b"\xff\xd9")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    boundary = "----wolivetest" + secrets.token_hex(8)
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   .encode() + value.encode() + b"\r\n")
    for name, (filename, data) in files.items():
        fn = filename.replace('"', "%22")
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                   f'filename="{fn}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                   + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


async def post_form(client: Client, path: str, fields: dict[str, str],
                    files: dict[str, tuple[str, bytes]], xsrf: str = "field"
                    ) -> tuple[int, dict[str, Any]]:
    """POST multipart; `xsrf` "field" (in the body), "header", or "none"."""
    fields = dict(fields)
    headers: dict[str, str] = {}
    if xsrf == "field" and "_xsrf" in client.cookies:
        fields["_xsrf"] = client.cookies["_xsrf"]
    if xsrf == "header" and "_xsrf" in client.cookies:
        headers["X-XSRFToken"] = client.cookies["_xsrf"]
    body, ctype = multipart(fields, files)
    headers["Content-Type"] = ctype
    resp = await client.fetch(path, "POST", body=body, headers=headers)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), \
        (resp.code, resp.body[:300])
    return resp.code, json.loads(resp.body)


# ---- set-up ------------------------------------------------------------------------------

async def agent_and_visitor(base_url: str, ws_base: str, db: str, visiter_id: str = "v-up"
                            ) -> tuple[Client, PusherSocket, Client, dict[str, Any]]:
    """The installed super_manager online on `kefu1`, and a visitor assigned to it."""
    agent = Client(base_url)
    assert (await agent.install(BIZ, "boss", PASSWORD)).code == 302
    sock = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await sock.subscribe("kefu1"))["event"] == "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")
                   [0]["state"] == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, visiter_id)
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"]})
    assert body["code"] == 0, body
    return agent, sock, visitor, boot


def ids(boot: dict[str, Any]) -> dict[str, str]:
    return {"visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"]}


def uploads_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg.server.data_dir) / "uploads"


def stored(cfg: dict[str, Any]) -> list[str]:
    d = uploads_dir(cfg)
    return sorted(os.listdir(d)) if d.exists() else []


async def add_agent(server: Any, business_id: str, user: str, level: str = "service"
                    ) -> None:
    from handlers.install import hash_password
    await server.store.add_service(business_id, user, user.title(),
                                   await hash_password(PASSWORD, 4), level=level)


async def login(base_url: str, user: str) -> Client:
    c = Client(base_url)
    resp = await c.login(user, PASSWORD)
    assert resp.code == 302, resp.code
    return c


# ---- visitor uploads ---------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_visitor_image_upload_becomes_a_message_and_is_served_safely(
        base_url: str, ws_base: str, cfg: dict) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    for image, ext, ctype in ((png_bytes(), "png", "image/png"),
                              (jpeg_bytes(), "jpg", "image/jpeg")):
        code, body = await post_form(visitor, "/admin/event/upload", ids(boot),
                                     {"upload": ("我的照片.php", image)})
        assert (code, body["code"], body["msg"]) == (200, 0, ""), body
        url = body["data"]
        assert url.startswith("/upload/") and url.endswith("." + ext), url
        pushed = await sock.expect("cu-event", "kefu1")
        assert pushed["data"]["message"]["content"] == url
        assert pushed["data"]["message"]["msg_type"] == "image"
        resp = await visitor.fetch(url)
        assert resp.code == 200 and resp.body == image
        assert resp.headers["Content-Type"] == ctype
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert "Content-Disposition" not in resp.headers
    rows = db_rows(db, "SELECT content, msg_type, direction, service_id FROM wolive_chats "
                       "ORDER BY cid")
    assert [(r["msg_type"], r["direction"], r["service_id"]) for r in rows] == \
        [("image", "to_service", 1)] * 2
    assert rows[0]["content"].endswith(".png") and rows[1]["content"].endswith(".jpg")
    names = stored(cfg)
    assert len([n for n in names if not n.endswith(".json")]) == 2
    for n in names:
        assert n.split(".")[0] in rows[0]["content"] + rows[1]["content"]
        mode = (uploads_dir(cfg) / n).stat().st_mode
        assert mode & 0o111 == 0, oct(mode)  # never executable
    # Outside static/ and the web root.
    assert not str(uploads_dir(cfg)).startswith(str(Path(__file__).parent.parent / "static"))


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("name, data", [
    ("shell.jpg", b"<?php system($_GET['c']); ?>"),
    ("page.jpg", b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"),
    ("fake.png", b"\x89PNG\r\n\x1a\n<?php system($_GET['c']); ?>"),  # magic, no header
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
])
async def test_visitor_image_upload_refuses_what_is_not_an_image(
        base_url: str, ws_base: str, cfg: dict, name: str, data: bytes) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    code, body = await post_form(visitor, "/admin/event/upload", ids(boot),
                                 {"upload": (name, data)})
    assert (code, body["code"]) == (415, 1), body
    assert stored(cfg) == []
    assert db_rows(db, "SELECT cid FROM wolive_chats") == []


@pytest.mark.gen_test(timeout=20)
async def test_visitor_file_upload_with_a_hostile_name(
        base_url: str, ws_base: str, cfg: dict, tmp_path: Path) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    hostile = "../../<script>alert('x');<!---->.html"
    html = b"<html><script>alert(document.cookie)</script></html>"
    code, body = await post_form(visitor, "/admin/event/uploadfile", ids(boot),
                                 {"folder": (hostile, html)})
    assert (code, body["code"], body["msg"]) == (200, 0, ""), body
    url = body["data"]
    assert url.startswith("/upload/") and url.endswith(".bin"), url  # no .html, no name
    # Stored under the random name inside the uploads folder, nowhere else.
    names = stored(cfg)
    assert sorted(names) == sorted([url.rsplit("/", 1)[1],
                                    url.rsplit("/", 1)[1] + ".meta.json"])
    assert not any(p.name.endswith(".html") for p in tmp_path.rglob("*"))
    row = db_rows(db, "SELECT content, msg_type FROM wolive_chats")[0]
    assert row == {"content": url + "\n" + "<script>alert('x');<!---->.html",
                   "msg_type": "file"}
    pushed = await sock.expect("cu-event", "kefu1")
    assert pushed["data"]["message"]["msg_type"] == "file"

    resp = await visitor.fetch(url)
    assert resp.code == 200 and resp.body == html
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert disposition.endswith(
        "filename*=UTF-8''%3Cscript%3Ealert%28%27x%27%29%3B%3C%21----%3E.html")
    assert "<" not in disposition and "'x'" not in disposition and "/" not in disposition


@pytest.mark.gen_test(timeout=20)
async def test_file_types_come_from_the_content(base_url: str, ws_base: str,
                                                cfg: dict) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
    for name, data, ext, ctype in (("report.exe", pdf, "pdf", "application/pdf"),
                                   ("notes.txt", "你好 notes".encode(), "bin",
                                    "application/octet-stream"),
                                   ("photo.png", png_bytes(), "png", "image/png")):
        code, body = await post_form(visitor, "/admin/event/uploadfile", ids(boot),
                                     {"folder": (name, data)})
        assert body["code"] == 0, body
        assert body["data"].endswith("." + ext)
        resp = await visitor.fetch(body["data"])
        assert resp.headers["Content-Type"] == ctype
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        assert resp.headers["Content-Disposition"].endswith(
            "filename*=UTF-8''" + {"report.exe": "report.exe", "notes.txt": "notes.txt",
                                   "photo.png": "photo.png"}[name])


@pytest.mark.gen_test(timeout=20)
async def test_visitor_upload_needs_the_visitors_channel(base_url: str, ws_base: str,
                                                         cfg: dict) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    stranger = Client(base_url)  # no window cookie
    wrong = {**ids(boot), "channel": "v" + "0" * 40}
    code, body = await post_form(stranger, "/admin/event/upload", wrong,
                                 {"upload": ("a.png", png_bytes())})
    assert (code, body["code"]) == (403, 3), body
    no_channel = {k: v for k, v in ids(boot).items() if k != "channel"}
    code, body = await post_form(stranger, "/admin/event/uploadfile", no_channel,
                                 {"folder": ("a.txt", b"hello")})
    assert (code, body["code"]) == (403, 3), body
    code, body = await post_form(stranger, "/admin/event/upload", {"business_id": BIZ},
                                 {"upload": ("a.png", png_bytes())})
    assert (code, body["code"]) == (400, 1) and "visiter_id" in body["msg"]
    code, body = await post_form(visitor, "/admin/event/upload", ids(boot), {})
    assert (code, body["code"]) == (400, 1) and "upload" in body["msg"]
    resp = await visitor.fetch("/admin/event/upload", "POST", form=ids(boot))
    assert resp.code == 400 and json.loads(resp.body)["code"] == 1
    # The window's own signed cookie stands in for `channel`.
    code, body = await post_form(visitor, "/admin/event/upload", no_channel,
                                 {"upload": ("a.png", png_bytes())})
    assert body["code"] == 0, body
    assert len([n for n in stored(cfg) if not n.endswith(".json")]) == 1


@pytest.mark.gen_test(timeout=20)
async def test_visitor_upload_before_assignment_stores_nothing(
        boss: Client, base_url: str, ws_base: str, cfg: dict) -> None:
    visitor, boot = await open_visitor_window(base_url, BIZ, "fresh")
    code, body = await post_form(visitor, "/admin/event/upload", ids(boot),
                                 {"upload": ("a.png", png_bytes())})
    assert (code, body["code"]) == (409, 3), body
    assert stored(cfg) == []


# ---- the size limit ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_18_mb_is_accepted_and_one_byte_more_is_413(base_url: str, ws_base: str,
                                                           cfg: dict) -> None:
    db = cfg.database.url
    assert cfg.uploads.max_bytes == 18 * MB
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    big = os.urandom(18 * MB)
    code, body = await post_form(visitor, "/admin/event/uploadfile", ids(boot),
                                 {"folder": ("big.dat", big)})
    assert (code, body["code"]) == (200, 0), body
    resp = await visitor.fetch(body["data"])
    assert resp.body == big
    before = stored(cfg)
    code, body = await post_form(visitor, "/admin/event/uploadfile", ids(boot),
                                 {"folder": ("big.dat", big + b"x")})
    assert (code, body["code"]) == (413, 1), body
    assert "18 MB" in body["msg"]
    code, body = await post_form(visitor, "/admin/event/upload", ids(boot),
                                 {"upload": ("big.png", png_bytes() + b"\x00" * (18 * MB))})
    assert (code, body["code"]) == (413, 1), body
    assert stored(cfg) == before
    assert len(db_rows(db, "SELECT cid FROM wolive_chats")) == 1


@pytest.mark.gen_test(timeout=20)
async def test_declared_oversize_is_refused_before_the_body(base_url: str, ws_base: str,
                                                            cfg: dict) -> None:
    """A Content-Length over the limit gets a JSON 413 at once; the body is never read."""
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    u = urlsplit(base_url)
    loop = asyncio.get_running_loop()

    def raw_request() -> bytes:
        with socket.create_connection((u.hostname, u.port), timeout=5) as s:
            s.sendall(b"POST /admin/event/uploadfile HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 50000000\r\n\r\n--b\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                piece = s.recv(65536)
                if not piece:
                    break
                data += piece
            return data

    answer = await loop.run_in_executor(None, raw_request)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:200]
    assert json.loads(payload[:payload.rindex(b"}") + 1])["code"] == 1
    assert stored(cfg) == []


# ---- agent uploads -----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_agent_sends_an_image_and_a_file(base_url: str, ws_base: str,
                                               cfg: dict) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    vsock = await PusherSocket.connect(ws_base)
    assert (await vsock.subscribe("cu" + boot["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"
    code, body = await post_form(agent, "/admin/set/upload", {"visiter_id": "v-up"},
                                 {"upload": ("shot.png", png_bytes())})
    assert (code, body["code"], body["msg"]) == (200, 0, "success"), body
    message = body["data"]
    assert message["msg_type"] == "image" and message["content"].startswith("/upload/")
    pushed = await vsock.expect("my-event")
    assert pushed["data"]["message"]["content"] == message["content"]
    code, body = await post_form(agent, "/admin/set/uploadfile", {"visiter_id": "v-up"},
                                 {"folder": ("价目表.pdf", b"%PDF-1.4\n%%EOF\n")}, xsrf="header")
    assert body["code"] == 0, body
    assert body["data"]["content"].endswith("\n价目表.pdf")
    assert (await vsock.expect("my-event"))["data"]["message"]["msg_type"] == "file"
    rows = db_rows(db, "SELECT msg_type, direction FROM wolive_chats ORDER BY cid")
    assert rows == [{"msg_type": "image", "direction": "to_visiter"},
                    {"msg_type": "file", "direction": "to_visiter"}]
    resp = await visitor.fetch(body["data"]["content"].split("\n")[0])
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"].endswith("UTF-8''%E4%BB%B7%E7%9B%AE%E8%A1%A8.pdf")


@pytest.mark.gen_test(timeout=20)
async def test_agent_upload_needs_login_xsrf_and_the_visitor(
        base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    image = {"upload": ("shot.png", png_bytes())}
    anonymous = Client(base_url)
    code, body = await post_form(anonymous, "/admin/set/upload", {"visiter_id": "v-up"},
                                 image)
    assert (code, body["code"]) == (401, 1)
    code, body = await post_form(agent, "/admin/set/upload", {"visiter_id": "v-up"}, image,
                                 xsrf="none")
    assert (code, body["code"]) == (403, 1) and "_xsrf" in body["msg"]
    code, body = await post_form(agent, "/admin/set/upload", {"visiter_id": "nobody"}, image)
    assert (code, body["code"]) == (404, 1)
    code, body = await post_form(agent, "/admin/set/upload", {}, image)
    assert (code, body["code"]) == (400, 1)
    # Another business's agent cannot reach this business's visitor.
    await wolive_server.store.add_business("shop2")
    await add_agent(wolive_server, "shop2", "other")
    other = await login(base_url, "other")
    code, body = await post_form(other, "/admin/set/upload", {"visiter_id": "v-up"}, image)
    assert (code, body["code"]) == (404, 1)
    # A plain agent of the same business cannot write to a colleague's visitor.
    await add_agent(wolive_server, BIZ, "colleague")
    colleague = await login(base_url, "colleague")
    code, body = await post_form(colleague, "/admin/set/uploadfile", {"visiter_id": "v-up"},
                                 {"folder": ("a.txt", b"hi")})
    assert (code, body["code"]) == (403, 1)
    assert stored(cfg) == []
    assert db_rows(db, "SELECT cid FROM wolive_chats") == []


@pytest.mark.gen_test(timeout=20)
async def test_avatar_upload(
        boss: Client, base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    agent = boss
    code, body = await post_form(agent, "/admin/manager/uploadpic", {},
                                 {"img_head": ("me.jpg", jpeg_bytes(64, 64))})
    assert (code, body["code"], body["msg"]) == (200, 0, ""), body
    assert body["data"].startswith("/upload/") and body["data"].endswith(".jpg")
    resp = await agent.fetch(body["data"])
    assert resp.headers["Content-Type"] == "image/jpeg"
    # Any agent level may upload its picture.
    await add_agent(wolive_server, BIZ, "plain")
    plain = await login(base_url, "plain")
    code, body = await post_form(plain, "/admin/manager/uploadpic", {},
                                 {"img_head": ("me.png", png_bytes())})
    assert body["code"] == 0
    code, body = await post_form(plain, "/admin/manager/uploadpic", {},
                                 {"img_head": ("me.png", b"GIF89a<script>")})
    assert (code, body["code"]) == (415, 1)
    code, body = await post_form(Client(base_url), "/admin/manager/uploadpic", {},
                                 {"img_head": ("me.png", png_bytes())})
    assert (code, body["code"]) == (401, 1)
    code, body = await post_form(plain, "/admin/manager/uploadpic", {},
                                 {"img_head": ("me.png", png_bytes())}, xsrf="none")
    assert (code, body["code"]) == (403, 1)
    code, body = await post_form(plain, "/admin/manager/uploadpic", {},
                                 {"img_head": ("big.png", png_bytes(30000, 30000, bomb=True))})
    assert (code, body["code"]) == (415, 1) and "too large" in body["msg"]


def wav_bytes() -> bytes:
    import io
    import wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 800)
    return buf.getvalue()


@pytest.mark.gen_test(timeout=20)
async def test_business_sound_upload(
        boss: Client, base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    # The document's default voice_address plays before anything is uploaded.
    resp = await boss.fetch("/upload/voice/default.mp3")
    assert resp.code == 200 and resp.headers["Content-Type"] == "audio/wav"
    assert resp.body[:4] == b"RIFF"
    code, body = await post_form(boss, "/admin/manager/uploadvoice", {},
                                 {"voice": ("ding.wav", wav_bytes())})
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    path = body["data"]["voice_address"]
    assert path.startswith("/upload/") and path.endswith(".wav")
    assert db_rows(db, "SELECT voice_address FROM wolive_business WHERE business_id = %s",
                   (BIZ,))[0]["voice_address"] == path
    resp = await boss.fetch(path)
    assert resp.headers["Content-Type"] == "audio/wav" and resp.body == wav_bytes()
    # Not a sound: refused, voice_address unchanged.
    code, body = await post_form(boss, "/admin/manager/uploadvoice", {},
                                 {"voice": ("ding.mp3", png_bytes())})
    assert (code, body["code"]) == (415, 1)
    assert db_rows(db, "SELECT voice_address FROM wolive_business")[0]["voice_address"] == path
    # Levels and businesses.
    await add_agent(wolive_server, BIZ, "plain")
    plain = await login(base_url, "plain")
    code, body = await post_form(plain, "/admin/manager/uploadvoice", {},
                                 {"voice": ("ding.wav", wav_bytes())})
    assert (code, body["code"]) == (403, 1)
    await wolive_server.store.add_business("other")
    await add_agent(wolive_server, "other", "stranger", level="manager")
    stranger = await login(base_url, "stranger")
    code, body = await post_form(stranger, "/admin/manager/uploadvoice",
                                 {"business_id": BIZ}, {"voice": ("ding.wav", wav_bytes())})
    assert (code, body["code"]) == (403, 1)
    code, body = await post_form(Client(base_url), "/admin/manager/uploadvoice", {},
                                 {"voice": ("ding.wav", wav_bytes())})
    assert (code, body["code"]) == (401, 1)
    assert db_rows(db, "SELECT voice_address FROM wolive_business WHERE business_id = %s",
                   (BIZ,))[0]["voice_address"] == path


# ---- serving -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_only_stored_names_are_served(base_url: str, ws_base: str, cfg: dict) -> None:
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    code, body = await post_form(visitor, "/admin/event/upload", ids(boot),
                                 {"upload": ("a.png", png_bytes())})
    name = body["data"].rsplit("/", 1)[1]
    token = name.split(".")[0]
    for path in (f"/upload/{token}.json", f"/upload/{name}.meta.json",
                 "/upload/..%2F..%2Fconfig.yaml",
                 "/upload/..%2Fsecrets.json", f"/upload/{token}.PNG", "/upload/",
                 f"/upload/{'0' * 32}.png", "/upload/%2e%2e"):
        resp = await visitor.fetch(path)
        assert resp.code == 404, (path, resp.code)
    resp = await visitor.fetch(body["data"], headers={"If-None-Match": f'"{name}"'})
    assert resp.code == 304
    resp = await visitor.fetch(body["data"], "HEAD")
    assert resp.code == 200 and resp.headers["Content-Length"] == str(len(png_bytes()))


def test_image_size_reader() -> None:
    from realtime.chat.uploads import clean_original_name, image_size
    assert image_size(png_bytes(7, 5), "png") == (7, 5)
    assert image_size(jpeg_bytes(640, 480), "jpg") == (640, 480)
    assert image_size(b"GIF89a" + struct.pack("<HH", 10, 20) + b"\x00" * 10, "gif") == (10, 20)
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x0a\x00\x00\x00" + b"\x00" * 4 + \
        (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    assert image_size(vp8x, "webp") == (100, 50)
    assert image_size(b"\xff\xd8\xff\xe0", "jpg") is None
    assert image_size(b"\x89PNG\r\n\x1a\n", "png") is None
    assert clean_original_name("C:\\Users\\me\\a.txt") == "a.txt"
    assert clean_original_name("..") == "file"
    assert clean_original_name("a\u202egnp.exe") == "agnp.exe"
    assert clean_original_name("x" * 300) == "x" * 200


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("disposition", [
    # What Chromium and Firefox send (the HTML standard: `"` as %22).
    'filename="报价 %22final%22 it\'s.png"',
    # RFC 5987 / RFC 7578 extended form, with an ASCII fallback.
    "filename=\"x.png\"; filename*=UTF-8''%E6%8A%A5%E4%BB%B7%20%22final%22%20it%27s.png",
    # A quoted-string with escapes (RFC 7230 quoted-pair).
    'filename="报价 \\"final\\" it\'s.png"',
])
async def test_upload_names_round_trip_exactly(base_url: str, ws_base: str, cfg: dict,
                                               disposition: str) -> None:
    """The name a visitor's file had is the name stored, shown and downloaded (was
    `报价 %22final%22 it's.png`, or `".png` from the RFC 5987 form)."""
    db = cfg.database.url
    agent, sock, visitor, boot = await agent_and_visitor(base_url, ws_base, db)
    boundary = "----wolivetest" + secrets.token_hex(8)
    body = b"".join(
        [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
         for k, v in ids(boot).items()]
        + [f'--{boundary}\r\nContent-Disposition: form-data; name="folder"; {disposition}\r\n'
           f"Content-Type: text/plain\r\n\r\n".encode() + b"hello\r\n",
           f"--{boundary}--\r\n".encode()])
    resp = await visitor.fetch("/admin/event/uploadfile", "POST", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    answer = json.loads(resp.body)
    assert answer["code"] == 0, answer
    want = "报价 \"final\" it's.png"
    row = db_rows(db, "SELECT content FROM wolive_chats")[0]
    assert row["content"] == answer["data"] + "\n" + want
    download = await visitor.fetch(answer["data"])
    from urllib.parse import unquote
    assert unquote(download.headers["Content-Disposition"].split("filename*=UTF-8''")[1]) \
        == want
