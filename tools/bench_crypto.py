#!/usr/bin/env python3
"""What AES-GCM sealing costs per packet, side by side with plaintext encoding.

For a small packet (a ping) and a full one (a ping plus as many piggybacked
alive updates as fit the 1400-byte budget) it times, in one run: wire encode,
seal, open and wire decode, and prints microseconds per packet and the ratio of
(encode + seal) to encode alone, and of (open + decode) to decode alone.

    python3 tools/bench_crypto.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gossip.core.membership.config import Config
from gossip.core.membership.messages import Alive, Message, Ping
from gossip.core.membership.wire import Codec
from gossip.security.keyring import Keyring, generate_key
from gossip.security.sealer import OVERHEAD, AesGcmSealer


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            fn()
        n += 200
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / n * 1e6


def encode_part(codec: Codec, message: Message) -> bytes:
    """One message as a packet carries it (a one-message frame is prefix, 0x81, part)."""
    return codec.frame(message)[len(codec.prefix) + 1 :]


def encode_packet(codec: Codec, messages: list[Message]) -> bytes:
    return codec.packet([encode_part(codec, m) for m in messages])


def build_packets(codec: Codec) -> dict[str, list[Message]]:
    ping: list[Message] = [Ping(seq=12345, target="node-17")]
    full = list(ping)
    size = len(encode_part(codec, ping[0]))
    i = 0
    while True:
        alive = Alive(f"node-{i:04d}", 7, (f"10.0.3.{i % 250}", 7946), {"role": "web"})
        n = len(encode_part(codec, alive))
        if size + n > codec.room:
            break
        full.append(alive)
        size += n
        i += 1
    return {"ping": ping, "full": full}


def measure(
    label: str,
    messages: list[Message],
    codec: Codec,
    sender: AesGcmSealer,
    receiver: AesGcmSealer,
    seconds: float,
) -> str:
    payload = encode_packet(codec, messages)
    sealed = sender.seal(payload)
    encode = per_call_us(lambda: encode_packet(codec, messages), seconds)
    seal = per_call_us(lambda: sender.seal(payload), seconds)
    decode = per_call_us(lambda: codec.decode_packet(payload), seconds)
    opened = per_call_us(lambda: receiver.open(sealed), seconds)
    return (
        f"{label:<6} {len(sealed):>6} {encode:>8.2f} {seal:>8.2f} {(encode + seal) / encode:>6.2f}"
        f" {decode:>8.2f} {opened:>8.2f} {(decode + opened) / decode:>6.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    cfg = Config.for_profile("lan", cluster_name="bench").replace(packet_overhead=OVERHEAD)
    codec = Codec(cfg)
    key = generate_key()
    sender = AesGcmSealer(Keyring([key]), "bench")
    # Replay filtering off, so one packet can be opened again and again.
    receiver = AesGcmSealer(Keyring([key]), "bench", replay_window=0)
    print(f"AES-256-GCM, {OVERHEAD} bytes overhead per packet; {args.seconds:.1f} s per figure")
    print(
        f"{'packet':<6} {'bytes':>6} {'encode':>8} {'seal':>8} {'ratio':>6}"
        f" {'decode':>8} {'open':>8} {'ratio':>6}   (microseconds per packet)"
    )
    for label, messages in build_packets(codec).items():
        print(measure(label, messages, codec, sender, receiver, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
