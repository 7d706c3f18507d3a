"""IP protocols as security group rules name them: Neutron's names, their numbers, and which
of them carry ports (or ICMP type/code) in ``port_range_min``/``port_range_max``."""

from __future__ import annotations

# Every name Neutron accepts for a rule's protocol, with its IANA number.
NUMBERS: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "icmp": 1,
    "icmpv6": 58,
    "igmp": 2,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}

# Protocols whose rules may name a port range (1-65535).
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
PORT_PROTOCOL_NAMES = "TCP, UDP, UDPLITE, SCTP and DCCP"
# Protocols whose port_range_min/max are an ICMP type and code (0-255).
ICMP_PROTOCOLS = frozenset({1, 58})
# Protocols that only exist over IPv6: a rule for IPv4 with one of them is refused.
IPV6_ONLY = frozenset({41, 43, 44, 58, 59, 60})
# What "all protocols" is spelled as: stored as no protocol at all.
ANY = ("any",)


def number(protocol: str | None) -> int | None:
    """The protocol number of a stored protocol (a name or a number as text)."""
    if protocol is None:
        return None
    if protocol in NUMBERS:
        return NUMBERS[protocol]
    return int(protocol)


def supported() -> str:
    return ", ".join(["any", *sorted(NUMBERS)])
