"""Decoding one untrusted CBOR map, for the store's wire formats.

Rules: garbage of any kind becomes the caller's error type (a ValueError
subclass) with a short reason; the caller bounds the payload size first.
"""

from __future__ import annotations

from typing import Any

import cbor2


def loads_map(payload: bytes, error: type[ValueError]) -> dict[str, Any]:
    try:
        raw = cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises many types on garbage
        raise error(f"bad cbor: {type(exc).__name__}") from exc
    if not isinstance(raw, dict):
        raise error("message is not a map")
    return raw
