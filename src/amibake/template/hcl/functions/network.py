"""IP network functions: ``cidrhost``, ``cidrnetmask``, ``cidrsubnet``, ``cidrsubnets``."""

from __future__ import annotations

import ipaddress
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    _int,
    _s,
)


def _net(prefix: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_s(prefix), strict=False)
    except ValueError as e:
        raise FunctionError(f"invalid CIDR expression: {e}") from None


def cidrhost(prefix: Any, hostnum: Any) -> str:
    net, n = _net(prefix), _int(hostnum, "hostnum")
    size = net.num_addresses
    if n < -size or n >= size:
        raise FunctionError(f"prefix {prefix} does not accommodate host number {n}")
    base = int(net.network_address) + (n if n >= 0 else size + n)
    return str(ipaddress.ip_address(base))


def cidrnetmask(prefix: Any) -> str:
    net = _net(prefix)
    if net.version != 4:
        raise FunctionError("only IPv4 networks have a netmask")
    return str(net.netmask)


def cidrsubnet(prefix: Any, newbits: Any, netnum: Any) -> str:
    net, nb, nn = _net(prefix), _int(newbits, "newbits"), _int(netnum, "netnum")
    newlen = net.prefixlen + nb
    if nb < 0 or newlen > net.max_prefixlen:
        raise FunctionError(f"insufficient address space to extend prefix of {net.prefixlen} by {nb}")
    if nn < 0 or nn >= 2**nb:
        raise FunctionError(f"prefix extension of {nb} does not accommodate a subnet numbered {nn}")
    base = int(net.network_address) + (nn << (net.max_prefixlen - newlen))
    return f"{ipaddress.ip_address(base)}/{newlen}"


def cidrsubnets(prefix: Any, *newbits: Any) -> list[str]:
    net = _net(prefix)
    out: list[str] = []
    cur = int(net.network_address)
    end = int(net.broadcast_address)
    for nb in newbits:
        newlen = net.prefixlen + _int(nb, "newbits")
        if newlen > net.max_prefixlen or newlen < net.prefixlen:
            raise FunctionError(f"would extend prefix to {newlen} bits, which is too long")
        size = 1 << (net.max_prefixlen - newlen)
        cur = (cur + size - 1) // size * size
        if cur + size - 1 > end:
            raise FunctionError(
                f"not enough remaining address space for a subnet with a prefix of {newlen} bits"
            )
        out.append(f"{ipaddress.ip_address(cur)}/{newlen}")
        cur += size
    return out
