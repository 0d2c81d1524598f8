"""Namespaces, veths and Linux bridges for the lab: a thin layer over pyroute2.

Every function names the namespace it works in; the lab never configures a
link in the machine's own namespace.  Offloads go off on every veth end the
lab makes, because userspace OVS forwards what AF_PACKET hands it and would
pass on partial checksums (ARCHITECTURE.md, facts).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import NetNS, netns

from ovsphere.errors import SetupError


def exists(ns: str) -> bool:
    return ns in netns.listnetns()


def create_netns(ns: str) -> None:
    if not exists(ns):
        netns.create(ns)
    with ns_handle(ns) as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")


def remove_netns(ns: str) -> None:
    if exists(ns):
        netns.remove(ns)


@contextmanager
def ns_handle(ns: str) -> Iterator[NetNS]:
    ip = NetNS(ns)
    try:
        yield ip
    finally:
        ip.close()


def _index(ip: NetNS, ns: str, ifname: str) -> int:
    found = ip.link_lookup(ifname=ifname)
    if not found:
        raise SetupError(f"namespace {ns} has no interface {ifname}")
    return int(found[0])


def link_exists(ns: str, ifname: str) -> bool:
    with ns_handle(ns) as ip:
        return bool(ip.link_lookup(ifname=ifname))


def veth(
    ns_a: str,
    name_a: str,
    ns_b: str,
    name_b: str,
    *,
    mac_a: str | None = None,
    mtu: int = 1500,
    up: bool = True,
) -> None:
    """A veth pair from ``ns_a``/``name_a`` to ``ns_b``/``name_b``; both ends up."""
    with ns_handle(ns_a) as ip:
        if ip.link_lookup(ifname=name_a):
            ip.link("del", index=_index(ip, ns_a, name_a))
        ip.link("add", ifname=name_a, kind="veth", peer={"ifname": name_b, "net_ns_fd": ns_b})
        idx = _index(ip, ns_a, name_a)
        if mac_a:
            ip.link("set", index=idx, address=mac_a)
        ip.link("set", index=idx, mtu=mtu)
        if up:
            ip.link("set", index=idx, state="up")
    with ns_handle(ns_b) as ip:
        idx = _index(ip, ns_b, name_b)
        ip.link("set", index=idx, mtu=mtu, state="up")
    offloads_off(ns_a, name_a)
    offloads_off(ns_b, name_b)


def offloads_off(ns: str, ifname: str) -> None:
    # On this kernel "tx off" alone leaves TSO on: name all three.
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "ethtool",
            "-K",
            ifname,
            "tx",
            "off",
            "tso",
            "off",
            "gso",
            "off",
        ],
        capture_output=True,
        check=False,
    )


def set_up(ns: str, ifname: str, *, mtu: int | None = None, up: bool = True) -> None:
    with ns_handle(ns) as ip:
        idx = _index(ip, ns, ifname)
        if mtu:
            ip.link("set", index=idx, mtu=mtu)
        ip.link("set", index=idx, state="up" if up else "down")


def add_address(ns: str, ifname: str, cidr: str) -> None:
    address, prefix = cidr.split("/")
    with ns_handle(ns) as ip:
        idx = _index(ip, ns, ifname)
        if not any(a.get_attr("IFA_ADDRESS") == address for a in ip.get_addr(index=idx)):
            ip.addr("add", index=idx, address=address, prefixlen=int(prefix))


def delete_link(ns: str, ifname: str) -> None:
    if not exists(ns):
        return
    with ns_handle(ns) as ip:
        found = ip.link_lookup(ifname=ifname)
        if found:
            ip.link("del", index=found[0])


def rename(ns: str, old: str, new: str) -> None:
    with ns_handle(ns) as ip:
        ip.link("set", index=_index(ip, ns, old), ifname=new)


def swap_in(
    ns: str,
    ifname: str,
    spare: str,
    aside: str,
    cidrs: list[str],
    routes: list[dict[str, Any]],
) -> bool:
    """Put link ``spare`` in the place of ``ifname``: the old link down and renamed
    ``aside``, the spare renamed ``ifname`` and up with the old one's addresses and
    routes.  One netlink session, so the swap takes milliseconds.  True if there was an
    old link (now ``aside``)."""
    with ns_handle(ns) as ip:
        old = ip.link_lookup(ifname=ifname)
        if old:
            ip.link("set", index=old[0], state="down")
            ip.link("set", index=old[0], ifname=aside)
        idx = _index(ip, ns, spare)
        ip.link("set", index=idx, ifname=ifname)
        ip.link("set", index=idx, state="up")
        for cidr in cidrs:
            address, prefix = cidr.split("/")
            ip.addr("add", index=idx, address=address, prefixlen=int(prefix))
        for r in routes:
            ip.route("replace", dst=f"{r['dst']}/{r['dst_len']}", gateway=r["gateway"], oif=idx)
        return bool(old)


def bridge(ns: str, name: str, *, mtu: int = 1500) -> None:
    """A Linux bridge (no STP, forwarding at once)."""
    with ns_handle(ns) as ip:
        if not ip.link_lookup(ifname=name):
            ip.link("add", ifname=name, kind="bridge", br_stp_state=0, br_forward_delay=0)
        ip.link("set", index=_index(ip, ns, name), mtu=mtu, state="up")


def enslave(ns: str, ifname: str, bridge_name: str) -> None:
    with ns_handle(ns) as ip:
        ip.link("set", index=_index(ip, ns, ifname), master=_index(ip, ns, bridge_name))


def addresses(ns: str, ifname: str) -> list[str]:
    with ns_handle(ns) as ip:
        idx = _index(ip, ns, ifname)
        return [
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ip.get_addr(index=idx)
            if a["family"] == 2
        ]


def mac_of(ns: str, ifname: str) -> str:
    with ns_handle(ns) as ip:
        link = ip.get_links(_index(ip, ns, ifname))[0]
        return str(link.get_attr("IFLA_ADDRESS"))


def pids_in(ns: str) -> list[int]:
    """PIDs of every process inside a namespace (``ip netns pids``)."""
    if not exists(ns):
        return []
    out = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]
