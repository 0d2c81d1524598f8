"""Trunk vNICs found by MAC, and the transport MTU, on a real OVS VM in a namespace."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ovsphere.lab import netlink
from ovsphere.transport import (
    GENEVE_OVERHEAD,
    VXLAN_OVERHEAD,
    NodeConnection,
    check_mtu,
    find_nics,
    read_node,
)
from ovsphere.transport.model import PROBE_BRIDGE

if TYPE_CHECKING:  # imported by pytest as a plugin, below
    from ovsphere.testing.transport import OvsVm

pytestmark = pytest.mark.functional
# Until tests/conftest.py lists it (then this line can go).

def link_flags(ns: str, ifname: str) -> int:
    with netlink.ns_handle(ns) as ip:
        return int(ip.get_links(ip.link_lookup(ifname=ifname)[0])[0]["flags"])


def test_find_nics_probes_candidates_and_cleans_up(ovs_vm: OvsVm) -> None:
    assert ovs_vm.netns is not None
    flags = link_flags(ovs_vm.netns, "eth2")
    # eth1 is already in OVSDB (on a bridge ovsphere does not own): read, not probed.
    ovs_vm.vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev",
                 "--", "add-port", "br-x", "eth1")
    with NodeConnection(ovs_vm.remote) as conn:
        found = find_nics(conn, ["eth2", "eth7", "eth1"])
        assert found == {ovs_vm.nics["eth1"]: "eth1", ovs_vm.nics["eth2"]: "eth2"}
        seen = read_node(conn)
        assert PROBE_BRIDGE not in {b.name for b in seen.bridges}
        assert {"eth2", "eth7"}.isdisjoint(p.name for p in seen.ports)
        # Nothing to probe: no transaction.
        before = ovs_vm.next_cfg()
        assert find_nics(conn, ["eth1"]) == {ovs_vm.nics["eth1"]: "eth1"}
        assert ovs_vm.next_cfg() == before
    assert ovs_vm.vsctl("list-br").split() == ["br-x"]
    assert link_flags(ovs_vm.netns, "eth2") == flags  # promiscuous mode undone


def test_a_probe_bridge_left_by_a_crash_is_replaced(ovs_vm: OvsVm) -> None:
    ovs_vm.vsctl("add-br", PROBE_BRIDGE, "--", "set", "bridge", PROBE_BRIDGE,
                 "datapath_type=netdev", "external_ids:ovsphere\\:owner=ovsphere")
    with NodeConnection(ovs_vm.remote) as conn:
        assert find_nics(conn, ["eth2"]) == {ovs_vm.nics["eth2"]: "eth2"}
    assert ovs_vm.vsctl("list-br") == ""


def mtu_of(conn: NodeConnection, ifname: str, want: int, timeout: float = 10) -> int | None:
    """The MTU read_node reports, polled until it is ``want`` (vswitchd updates it)."""
    deadline = time.monotonic() + timeout
    while True:
        mtu = read_node(conn).mtu.get(ifname)
        if mtu == want or time.monotonic() > deadline:
            return mtu
        time.sleep(0.05)


def test_transport_mtu_1500_is_too_small_and_1600_is_enough(ovs_vm: OvsVm) -> None:
    assert ovs_vm.netns is not None
    # The underlay NIC on br-phy, as the lab (and a real OVS VM) has it.
    ovs_vm.vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
                 "--", "add-port", "br-phy", "eth1")
    with NodeConnection(ovs_vm.remote) as conn:
        assert mtu_of(conn, "eth1", 1500) == 1500
        observed = read_node(conn)
        (problem,) = check_mtu(observed, "eth1", GENEVE_OVERHEAD)
        assert (problem.interface, problem.mtu, problem.needed) == ("eth1", 1500, 1558)
        assert problem.message == (
            "transport MTU 1500 on eth1 is too small for 1500-byte guest frames through "
            "Geneve (needs 1558): raise it to 1600"
        )
        assert "VXLAN (needs 1550)" in check_mtu(observed, "eth1", VXLAN_OVERHEAD)[0].message
        assert check_mtu(observed, "eth1", GENEVE_OVERHEAD, guest_mtu=1442) == []
        (unknown,) = check_mtu(observed, "eth9", GENEVE_OVERHEAD)
        assert unknown.mtu == 0 and "eth9" in unknown.message

        netlink.set_up(ovs_vm.netns, "eth1", mtu=1600)
        assert mtu_of(conn, "eth1", 1600) == 1600
        assert check_mtu(read_node(conn), "eth1", GENEVE_OVERHEAD) == []
