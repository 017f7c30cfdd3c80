"""Signatures: Pusher HTTP API requests, channel auth strings, webhooks, visitor channels.

Sources: Pusher REST API "Authentication" (string to sign, `body_md5`, ±600 s), Pusher
"Authorizing users" (channel auth strings), and what the official server libraries do
(URL-decoded values, the empty-body MD5 on GET, constant-time compare).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from ..inputs import InputError, whole_number

#: How far `auth_timestamp` may be from our clock (seconds): Pusher's documented window.
TIMESTAMP_WINDOW_S = 600
EMPTY_BODY_MD5 = hashlib.md5(b"").hexdigest()


def hmac_sha256_hex(secret: str, message: str | bytes) -> str:
    if isinstance(message, str):
        message = message.encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class SignatureProblem(Exception):
    """Why a signed request was refused; `status` is the HTTP status to answer."""

    status: int
    reason: str


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """`METHOD\\nPATH\\nk=v&...`: keys lower-cased and sorted, `auth_signature` left out."""
    pairs = sorted((k.lower(), v) for k, v in params.items() if k.lower() != "auth_signature")
    return f"{method.upper()}\n{path}\n" + "&".join(f"{k}={v}" for k, v in pairs)


def verify_api_request(method: str, path: str, params: Mapping[str, str], body: bytes,
                       key: str, secret: str, now: Optional[float] = None) -> None:
    """Check a Pusher HTTP API request; `params` are the URL-decoded query values.

    Raises `SignatureProblem` (401) when the key, timestamp, body hash or signature is wrong.
    """
    if params.get("auth_key") != key:
        raise SignatureProblem(401, "Unknown auth_key")
    if params.get("auth_version", "1.0") != "1.0":
        raise SignatureProblem(401, "auth_version must be 1.0")
    try:
        ts = whole_number(params.get("auth_timestamp", ""), 0, 2**40)
    except InputError:
        raise SignatureProblem(401, "auth_timestamp missing or not a whole number of "
                                    "seconds") from None
    if abs((now if now is not None else time.time()) - ts) > TIMESTAMP_WINDOW_S:
        raise SignatureProblem(401, "auth_timestamp is more than 600 s from the server's clock")
    md5 = params.get("body_md5")
    if body:
        if md5 is None or not same(md5, hashlib.md5(body).hexdigest()):
            raise SignatureProblem(401, "body_md5 does not match the body")
    elif md5 is not None and md5 != EMPTY_BODY_MD5:
        raise SignatureProblem(401, "body_md5 does not match the (empty) body")
    expected = hmac_sha256_hex(secret, string_to_sign(method, path, params))
    if not same(params.get("auth_signature", ""), expected):
        raise SignatureProblem(401, "Invalid signature")


def channel_auth(key: str, secret: str, socket_id: str, channel: str,
                 channel_data: Optional[str] = None) -> str:
    """`key:hex(HMAC(secret, socket_id:channel[:channel_data]))` for private/presence."""
    subject = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{key}:{hmac_sha256_hex(secret, subject)}"


def visitor_channel(server_secret: str, business_id: str, visiter_id: str) -> str:
    """The visitor's channel (the page listens on ``cu`` + it): unguessable without the server
    secret, stable for one visitor, and a valid Pusher channel name (the original WoLive
    hex-encoded the ids, so anyone could derive anyone's; README, "What is different from
    WoLive (on purpose)")."""
    subject = f"visitor-channel\n{business_id}\n{visiter_id}"
    return "v" + hmac_sha256_hex(server_secret, subject)[:40]


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    """`key:hex(HMAC(secret, socket_id::user::user_data))` for `pusher:signin` (Pusher "User
    authentication"); `user_data` is the exact JSON string the client sends."""
    return f"{key}:{hmac_sha256_hex(secret, f'{socket_id}::user::{user_data}')}"


def derive_master_key(secret: str) -> bytes:
    """The 32-byte encryption master key of an app that has none configured:
    SHA-256 of `"wolive-encryption-master-key\\n" + secret`. A backend that publishes to
    `private-encrypted-` channels with an official library passes it (base64) as
    `encryptionMasterKeyBase64` / `encryption_master_key_base64`."""
    return hashlib.sha256(f"wolive-encryption-master-key\n{secret}".encode()).digest()


def shared_secret(channel: str, master_key: bytes) -> bytes:
    """The per-channel key of a `private-encrypted-` channel: SHA-256(channel + master key),
    as the official server libraries compute it (pusher-http-node `channelSharedSecret`)."""
    return hashlib.sha256(channel.encode("utf-8") + master_key).digest()
