"""Untrusted input decoded once, the same way for every kind of caller (JSON APIs, the Pusher
HTTP API, WebSocket frames, webhooks): JSON with a nesting limit and only valid Unicode, whole
numbers as ASCII digits within a range.

Why each rule: Python's JSON decoder recurses per nesting level, so `[[[[...]]]]` deep enough
raises `RecursionError` instead of a clean refusal; a JSON escape such as `"\\ud800"` decodes
to a lone surrogate, which no database, UTF-8 encoder or HMAC can take; `int()` accepts
Unicode digits (`"٣"`), padding (`" 7 "`) and numbers past any column.
"""
from __future__ import annotations

import json
import re
from typing import Any

#: Deepest nesting of arrays/objects accepted in any JSON input; WoLive's and Pusher's
#: payloads nest a few levels at most.
MAX_JSON_DEPTH = 32

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_WHOLE = re.compile(r"-?[0-9]{1,40}")


class InputError(ValueError):
    """Input refused; `str(error)` says why, in words fit for the caller."""


def loads(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, refusing what it would crash on or let through broken.

    Raises `InputError` when `text` is not JSON (or not UTF-8), nests arrays/objects deeper
    than `max_depth`, or holds a string with a lone surrogate (a `\\ud800`-style escape)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not UTF-8") from None
    # Cheap checks first: only text with that many brackets can nest that deep, and only text
    # with a \\u escape can decode to a lone surrogate.
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise InputError(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text)
    except RecursionError:  # belt and braces: _depth already refused it
        raise InputError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        raise InputError("not valid JSON") from None
    if ("\\ud" in text or "\\uD" in text) and not _valid_strings(value):
        raise InputError("text with an unpaired surrogate (not valid Unicode)")
    return value


def valid_text(value: str) -> bool:
    """Whether `value` is valid Unicode text: no lone surrogate."""
    return _LONE_SURROGATE.search(value) is None


def whole_number(raw: str, lo: int = -2**63, hi: int = 2**63 - 1) -> int:
    """`raw` as an integer: ASCII digits with an optional leading `-`, nothing around them,
    within `lo`..`hi` (a database BIGINT by default). Raises `InputError`."""
    if not isinstance(raw, str) or not _WHOLE.fullmatch(raw):  # fullmatch: no "7\n" either
        raise InputError("must be a whole number (ASCII digits)")
    value = int(raw)
    if not lo <= value <= hi:
        raise InputError(f"is out of range ({lo} to {hi})")
    return value


def _depth(text: str) -> int:
    """Deepest array/object nesting of JSON `text` (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}":
            depth -= 1
    return deepest


def _valid_strings(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not valid_text(item):
                return False
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not valid_text(key):
                    return False
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return True
