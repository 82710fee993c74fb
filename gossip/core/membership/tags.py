"""A member's tags: validated on the way in, frozen once held.

Rules: tags map str to str and encode within cfg.max_tags_bytes; a held copy
is read-only, and every tagless member shares one empty mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import cbor2

from gossip.core.membership.config import Config


def check_tags(cfg: Config, tags: Mapping[str, str]) -> None:
    if not all(type(k) is str and type(v) is str for k, v in tags.items()):
        raise ValueError("tags must map str to str")
    size = len(cbor2.dumps(dict(tags)))
    if size > cfg.max_tags_bytes:
        raise ValueError(f"tags take {size} bytes encoded; the limit is {cfg.max_tags_bytes}")


def freeze_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags)) if tags else _NO_TAGS


_NO_TAGS: Mapping[str, str] = MappingProxyType({})
