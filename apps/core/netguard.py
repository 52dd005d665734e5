"""The SSRF guard every outbound request shares: which addresses are not public, and resolving a host to judge it.

Pure Python (no Django): the http_request node of the engine, webhook URL registration and webhook delivery all
judge addresses here, each with its own exemption (a tenant's allowed hosts, NEXUS_WEBHOOK_ALLOW_PRIVATE) and its
own error. Every address a host resolves to is judged, not only the first: a name resolving to one public and one
private address would otherwise reach the private one whenever the resolver orders it first. Callers then connect
to a judged address (no second lookup that could answer differently: DNS rebinding).
"""

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnresolvableHost(Exception):
    """The host has no address (or the name cannot be resolved); the message says which and why."""


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` must not be reached on a tenant's behalf (`loopback`, `private`, …), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 smuggled inside IPv6 (::ffff:127.0.0.1, 6to4, Teredo) is judged as the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            reason = blocked_reason(embedded)
            if reason is not None:
                return reason
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (each once, in the resolver's order), or UnresolvableHost."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canonical, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnresolvableHost(f"{host!r} has no addresses")
    return addresses


def first_blocked(addresses: list[str]) -> tuple[str, str] | None:
    """(address, reason) of the first address that is not public, or None when all of them are."""
    for ip in addresses:
        reason = blocked_reason(ipaddress.ip_address(ip))
        if reason is not None:
            return ip, reason
    return None
