"""Agents' passwords: the policy for a new one, bcrypt hashing, and the check login and
agent management use (WoLive's md5 hashes accepted once, then rehashed by the caller).

No web framework here: a refused password raises `PasswordRefused`, which the handlers
answer as `ApiError` 400 and the admin commands (`create-admin`, `reset-password`) print.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac

import bcrypt

#: Shortest password the installer and agent management accept.
MIN_PASSWORD = 8
#: bcrypt only reads the first 72 bytes; refuse longer rather than silently truncate.
MAX_PASSWORD_BYTES = 72
#: `wolive-md5:<md5 hex>:<old user name>`: the WoLive hash of an agent `import-wolive`
#: renamed (a duplicate user name), salted with the name it had (store/wolive_import.py).
RENAMED_MD5_PREFIX = "wolive-md5:"


class PasswordRefused(Exception):
    """A new password the policy refuses; `msg` says why (shown to the user as is)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def check_new_password(password: str, password2: str | None = None) -> None:
    """Raises `PasswordRefused` with the reason."""
    if password2 is not None and password != password2:
        raise PasswordRefused("the two passwords differ / 两次密码不一致")
    if len(password) < MIN_PASSWORD:
        raise PasswordRefused(f"password needs at least {MIN_PASSWORD} characters / "
                              f"密码至少 {MIN_PASSWORD} 个字符")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise PasswordRefused(f"password is over {MAX_PASSWORD_BYTES} bytes / "
                              f"密码不能超过 {MAX_PASSWORD_BYTES} 字节")


async def hash_password(password: str, rounds: int) -> str:
    """bcrypt with `rounds` (config `security.bcrypt_rounds`), off the IOLoop (bcrypt is
    slow on purpose: at the usual costs a hash takes a sizeable fraction of a second of CPU)."""
    loop = asyncio.get_running_loop()
    salt = bcrypt.gensalt(rounds)
    hashed = await loop.run_in_executor(None, bcrypt.hashpw, password.encode(), salt)
    return hashed.decode()


async def check_password(password: str, stored: str, user_name: str) -> bool:
    """bcrypt, or once the later WoLive `md5(user_name + "hjkj" + password)` (README.md,
    "Moving from WoLive"; for an agent the import renamed, with its
    old name: `RENAMED_MD5_PREFIX`); the caller rehashes that with bcrypt."""
    if stored.startswith("$2"):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, bcrypt.checkpw, password.encode(),
                                              stored.encode())
        except ValueError:
            return False
    if stored.startswith(RENAMED_MD5_PREFIX):  # an agent `import-wolive` had to rename
        stored, _, user_name = stored[len(RENAMED_MD5_PREFIX):].partition(":")
    legacy = hashlib.md5((user_name + "hjkj" + password).encode()).hexdigest()
    return hmac.compare_digest(legacy, stored)
