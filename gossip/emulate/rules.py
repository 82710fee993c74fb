"""Packet-filter and queueing rules for a network state, as text and argv.

Rules: loss and partitions are enforced where packets arrive — on the bridge
(every sender/receiver pair) or in the receiver's own input chain — never on
the sender's output path, so a sender never sees a local send error for an
emulated loss. Only IP between cluster members is matched (IPv4 or IPv6, by
the members' addresses): ARP, IPv6 neighbour discovery (ICMPv6) and traffic
from outside the cluster pass. Rendering is pure; players run the result.
"""

from __future__ import annotations

from collections.abc import Mapping

from gossip.emulate.plan import NetState, partitioned, receiver_loss

TABLE = "gossip_emulate"


def _pair_rule(net: NetState, sender: str, receiver: str) -> str | None:
    if partitioned(net, sender, receiver):
        return "drop"
    percent = receiver_loss(net, sender, receiver)
    if percent <= 0:
        return None
    # numgen works on integers: loss in hundredths of a percent.
    return f"numgen random mod 10000 < {round(percent * 100)} drop"


def _match(src: str, dst: str | None = None) -> str:
    """An nft match of a source (and destination) address; IPv6 matches spare
    neighbour discovery, as IPv4 ones spare ARP."""
    family = "ip6" if ":" in src else "ip"
    text = f"{family} saddr {src}" + (f" {family} daddr {dst}" if dst else "")
    return text + " meta l4proto != ipv6-icmp" if family == "ip6" else text


def bridge_ruleset(net: NetState, addresses: Mapping[str, str]) -> str:
    """An nft script that replaces the bridge's filter table (family bridge,
    forward hook): one rule per sender/receiver pair that loses packets."""
    lines = [
        f"table bridge {TABLE}",  # create if absent so the delete below cannot fail
        f"delete table bridge {TABLE}",
        f"table bridge {TABLE} {{",
        "  chain forward {",
        "    type filter hook forward priority 0; policy accept;",
    ]
    for sender, src in addresses.items():
        for receiver, dst in addresses.items():
            if sender == receiver:
                continue
            verdict = _pair_rule(net, sender, receiver)
            if verdict:
                lines.append(f"    {_match(src, dst)} {verdict}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def input_ruleset(net: NetState, addresses: Mapping[str, str], receiver: str) -> str:
    """An nft script for one receiver's own input chain (family inet)."""
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "  chain input {",
        "    type filter hook input priority 0; policy accept;",
    ]
    for sender, src in addresses.items():
        if sender != receiver:
            verdict = _pair_rule(net, sender, receiver)
            if verdict:
                lines.append(f"    {_match(src)} {verdict}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def qdisc_commands(net: NetState, node: str, device: str) -> list[list[str]]:
    """tc argv lists that set `device`'s egress queueing for `node`: a tbf rate
    limit, netem delay/jitter, both (netem with tbf beneath), or neither."""
    rate = net.rate.get(node)
    delay = net.delay.get(node)
    clear = ["tc", "qdisc", "del", "dev", device, "root"]
    tbf = ["tbf", "rate", rate or "", "burst", "32kbit", "latency", "400ms"]
    if delay is None and rate is None:
        return [clear]
    if delay is None:
        return [["tc", "qdisc", "replace", "dev", device, "root", *tbf]]
    netem = ["netem", "delay", f"{delay[0]:g}ms", f"{delay[1]:g}ms"]
    if rate is None:
        return [["tc", "qdisc", "replace", "dev", device, "root", *netem]]
    return [
        ["tc", "qdisc", "replace", "dev", device, "root", "handle", "1:", *netem],
        ["tc", "qdisc", "replace", "dev", device, "parent", "1:1", "handle", "10:", *tbf],
    ]
