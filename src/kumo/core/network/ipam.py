"""IP address management: handing out fixed IPs of a subnet, never one address twice.

The guarantee is the database's: ip_allocations has the primary key (subnet, address), so
of two racing requests for one address only one can commit. Each attempt inserts inside a
SAVEPOINT; the loser of a race rolls back only that attempt and tries the next free
address, without losing the rest of its transaction. Automatic allocations also queue on
the subnet's row first, which keeps such races rare (see ``allocate``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict
from kumo.db import models as m

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(value: object, what: str = "ip_address") -> IPAddress:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for {what}. Reason: '{value}' is not a valid IP address.")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise BadRequest(
            f"Invalid input for {what}. Reason: '{value}' is not a valid IP address."
        ) from None


def canonical(value: str) -> str:
    """One spelling per address (IPv6 compressed, lower case): the primary key compares text."""
    return str(ipaddress.ip_address(value))


def pool_ranges(subnet: m.Subnet) -> list[tuple[int, int]]:
    """The subnet's allocation pools as sorted (first, last) integer ranges."""
    ranges = [
        (int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
        for p in subnet.allocation_pools or []
    ]
    return sorted(ranges)


def _candidates(subnet: m.Subnet, taken: set[str]) -> Iterator[str]:
    make = ipaddress.IPv6Address if subnet.ip_version == 6 else ipaddress.IPv4Address
    for first, last in pool_ranges(subnet):
        for value in range(first, last + 1):
            text = str(make(value))
            if text not in taken and text != subnet.gateway_ip:
                yield text


def check_in_subnet(subnet: m.Subnet, ip: str, allow_gateway: bool = False) -> str:
    """A requested fixed IP must be a usable address of the subnet's CIDR (it may lie
    outside the allocation pools, as in Neutron); returns its canonical spelling."""
    address = parse_ip(ip)
    network = ipaddress.ip_network(subnet.cidr)
    invalid = BadRequest(
        f"IP address {ip} is not a valid IP for the specified subnet.", kind="InvalidIpForSubnet"
    )
    if address.version != network.version or address not in network:
        raise invalid
    if network.num_addresses > 2 and address == network.network_address:
        raise invalid
    if network.version == 4 and network.num_addresses > 2 and address == network.broadcast_address:
        raise invalid
    text = str(address)
    if text == subnet.gateway_ip and not allow_gateway:
        raise Conflict(
            f"IP address {text} is the gateway of subnet {subnet.id}; only a router "
            "interface may take it.",
            kind="IpAddressAlreadyAllocated",
        )
    return text


def _insert(session: Session, subnet: m.Subnet, port_id: str, network_id: str, ip: str) -> bool:
    """Try to take ``ip``; False if another allocation holds it (this one rolled back)."""
    try:
        with session.begin_nested():
            session.add(
                m.IPAllocation(
                    subnet_id=subnet.id, ip_address=ip, port_id=port_id, network_id=network_id
                )
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def allocate(
    session: Session,
    subnet: m.Subnet,
    port_id: str,
    network_id: str,
    ip: str | None,
    allow_gateway: bool = False,
) -> str:
    """Give ``port_id`` an address of ``subnet``: ``ip`` if requested (409
    IpAddressAlreadyAllocated if taken), else the first free address of the allocation
    pools (409 IpAddressGenerationFailure when none is left). Returns the address."""
    if ip is not None:
        wanted = check_in_subnet(subnet, ip, allow_gateway=allow_gateway)
        if not _insert(session, subnet, port_id, network_id, wanted):
            raise Conflict(
                f"IP address {wanted} already allocated in subnet {subnet.id}",
                kind="IpAddressAlreadyAllocated",
            )
        return wanted
    # "First free address" makes every racing request want the same one: queue them on the
    # subnet's row (PostgreSQL, MariaDB; SQLite has one writer anyway) so each waits once,
    # instead of colliding, waiting for the winner's commit and colliding again on the next.
    session.execute(select(m.Subnet.id).where(m.Subnet.id == subnet.id).with_for_update())
    taken = set(
        session.execute(
            select(m.IPAllocation.ip_address).where(m.IPAllocation.subnet_id == subnet.id)
        ).scalars()
    )
    for candidate in _candidates(subnet, taken):
        if _insert(session, subnet, port_id, network_id, candidate):
            return candidate
    raise Conflict(
        f"No more IP addresses available on network {network_id}.",
        kind="IpAddressGenerationFailure",
    )


def release(session: Session, port_id: str, subnet_id: str | None = None) -> None:
    """Free the port's addresses (of one subnet, or all)."""
    statement = delete(m.IPAllocation).where(m.IPAllocation.port_id == port_id)
    if subnet_id is not None:
        statement = statement.where(m.IPAllocation.subnet_id == subnet_id)
    session.execute(statement)


def release_address(session: Session, port_id: str, subnet_id: str, ip: str) -> None:
    session.execute(
        delete(m.IPAllocation).where(
            m.IPAllocation.port_id == port_id,
            m.IPAllocation.subnet_id == subnet_id,
            m.IPAllocation.ip_address == ip,
        )
    )


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC address of ``mac`` in an IPv6 /64 (modified EUI-64, RFC 4291)."""
    network = ipaddress.ip_network(cidr)
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 255, 254, *octets[3:]]
    value = int(network.network_address) | int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(value))


def is_auto_address(subnet: m.Subnet) -> bool:
    """IPv6 subnets whose hosts pick their own address (SLAAC or DHCPv6-stateless)."""
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def network_of(subnet: m.Subnet) -> IPNetwork:
    return ipaddress.ip_network(subnet.cidr)


def within(inner: IPNetwork, outer: IPNetwork) -> bool:
    """``inner`` lies in ``outer`` (False across IP versions)."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False
