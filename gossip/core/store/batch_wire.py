"""Batches of replica operations on the "kv-batch" stream channel.

Rules: a batch is a CBOR array of encoded replica operations (each exactly what
the "kv" channel carries), and its answer an array of their answers in the same
order. Everything decoded is untrusted: a batch holds at most MAX_BATCH_OPS
items, each a byte string; anything else raises BatchError and nothing is
applied. An answer whose length differs from its batch is refused the same way.
"""

from __future__ import annotations

import cbor2

MAX_BATCH_OPS = 64


class BatchError(ValueError):
    pass


def encode_batch(items: list[bytes]) -> bytes:
    return cbor2.dumps(items)


def decode_batch(payload: bytes, expected: int | None = None) -> list[bytes]:
    """The items of a batch (or of its answer, when `expected` gives its length)."""
    try:
        items = cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises several types on garbage
        raise BatchError(f"bad batch: {type(exc).__name__}") from None
    if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
        raise BatchError("bad batch: not an array of byte strings")
    if not 0 < len(items) <= MAX_BATCH_OPS:
        raise BatchError(f"bad batch: {len(items)} items")
    if expected is not None and len(items) != expected:
        raise BatchError(f"bad batch answer: {len(items)} items for {expected}")
    return items
