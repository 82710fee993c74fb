"""Rendezvous (highest random weight) scores: pure functions, identical on every host.

Rules:
- Hashes are fixed functions of bytes (blake2b-64 for names and keys, murmur3's fmix64
  finalizer for mixing), never Python's salted hash(), so every process ranks alike.
- A member's raw score for a key is fmix64(key_hash ^ member_hash). With weights the score is
  -w / ln(u), u the raw score mapped into (0, 1): each member's share of keys is then
  proportional to its weight (the exponential-race argument).
- When every weight is equal the ranking compares raw scores as integers: the same order as
  -w / ln(u) (which is increasing in u), but exact on every CPU and without a logarithm.
- Ties break towards the smaller member name, so the order is total. In integer mode ties need
  a 64-bit member-hash collision.
- The scalar functions and the numpy array functions compute bit-identical scores.
- numpy is imported only by the functions that need it (array scoring, weighted scores), so
  a process that never builds a table nor ranks weighted members does not pay for it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from functools import lru_cache
from hashlib import blake2b
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

U64: TypeAlias = "npt.NDArray[np.uint64]"

MASK64 = (1 << 64) - 1
_M1 = 0xFF51AFD7ED558CCD
_M2 = 0xC4CEB9FE1A85EC53
_GOLDEN = 0x9E3779B97F4A7C15
"""Spreads consecutive partition numbers before mixing."""
_PARTITION_SEED = 0x6F776E6572736869  # fixed forever: changing it moves every partition


def fmix64(x: int) -> int:
    """murmur3's 64-bit finalizer: a bijection on 64-bit ints with full avalanche."""
    x ^= x >> 33
    x = (x * _M1) & MASK64
    x ^= x >> 33
    x = (x * _M2) & MASK64
    return x ^ (x >> 33)


def hash64(data: bytes | str) -> int:
    """Stable 64-bit hash of a name or key (str is hashed as UTF-8)."""
    raw = data.encode() if isinstance(data, str) else data
    return int.from_bytes(blake2b(raw, digest_size=8).digest(), "little")


@lru_cache(maxsize=65536)
def member_hash(name: str) -> int:
    """hash64 of a member name, cached: member sets change rarely, keys constantly."""
    return hash64(name)


def partition_hash(partition: int) -> int:
    """The HRW key hash of table partition `partition`."""
    return fmix64((partition * _GOLDEN + _PARTITION_SEED) & MASK64)


def raw_score(key_hash: int, member_hash: int) -> int:
    return fmix64(key_hash ^ member_hash)


def unit_interval(raw: int) -> float:
    """Map a raw score to (0, 1), never 0 or 1, using its top 53 bits."""
    return ((raw >> 11) + 0.5) * 2.0**-53


def weighted_score(raw: int, weight: float) -> float:
    """-w / ln(u): the highest score wins; shares follow weights.

    Uses numpy's log, like the array path, so both round identically on one host.
    """
    import numpy as np

    u = np.array([unit_interval(raw)], dtype=np.float64)
    return float(-weight / np.log(u)[0])


def uniform_weights(weights: Mapping[str, float]) -> bool:
    """True when every weight is equal, so integer ranking applies."""
    return len(set(weights.values())) <= 1


def rank(key_hash: int, members: Mapping[str, float], n: int | None = None) -> list[str]:
    """Members (name -> weight) in HRW order for `key_hash`, the first `n` (all if None)."""
    integer_mode = uniform_weights(members)
    scored: list[tuple[float, str]] = []
    for name, weight in members.items():
        raw = raw_score(key_hash, member_hash(name))
        # Python ints compare exactly; float(raw) would round away the low bits.
        value = raw if integer_mode else weighted_score(raw, weight)
        scored.append((-value, name))
    best = sorted(scored) if n is None else heapq.nsmallest(n, scored)
    return [name for _, name in best]


def rank_key(key: bytes | str, members: Mapping[str, float], n: int | None = None) -> list[str]:
    """HRW order of `members` for an arbitrary key, computed directly (O(members))."""
    return rank(hash64(key), members, n)


# ---- array versions (the partition table) -----------------------------------


def fmix64_array(x: U64) -> U64:
    """fmix64 of every element, computed in place in a copy (uint64 wraps modulo 2^64)."""
    return _fmix64_inplace(x.copy())


def _fmix64_inplace(x: U64) -> U64:
    import numpy as np

    shifted = np.empty_like(x)
    s33 = np.uint64(33)
    for multiplier in (np.uint64(_M1), np.uint64(_M2)):
        np.right_shift(x, s33, out=shifted)
        np.bitwise_xor(x, shifted, out=x)
        np.multiply(x, multiplier, out=x)
    np.right_shift(x, s33, out=shifted)
    np.bitwise_xor(x, shifted, out=x)
    return x


def partition_hashes_of(partitions: npt.NDArray[np.intp]) -> U64:
    """partition_hash(p) for every p in `partitions`, as one array."""
    import numpy as np

    p = partitions.astype(np.uint64)
    return fmix64_array(p * np.uint64(_GOLDEN) + np.uint64(_PARTITION_SEED))


def score_matrix(
    key_hashes: U64, member_hashes: list[int], weights: list[float], integer_mode: bool
) -> U64:
    """Scores of every member (columns) for every key (rows), as uint64 that order like scores.

    Rows are keys so that per-key reductions (argmax along axis 1) run over contiguous memory.
    Positive IEEE doubles order the same as their bit patterns read as unsigned integers, so
    weighted (float) scores come back reinterpreted as uint64: one dtype for both modes.
    """
    import numpy as np

    members = np.array(member_hashes, dtype=np.uint64)
    raw = _fmix64_inplace(key_hashes[:, None] ^ members[None, :])
    if integer_mode:
        return raw
    u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    w = np.array(weights, dtype=np.float64)
    scores: npt.NDArray[np.float64] = -w[None, :] / np.log(u)
    return scores.view(np.uint64)
