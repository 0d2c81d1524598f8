"""apply_node against a real ovsdb-server + ovs-vswitchd (netdev) in a namespace."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from ovsphere.transport import (
    Chassis,
    NodeConnection,
    NodeDesired,
    Patch,
    Trunk,
    TrunkNicMissing,
    apply_and_observe,
    apply_node,
    plan_node,
    read_node,
)
from ovsphere.transport.model import PROBE_BRIDGE

if TYPE_CHECKING:  # imported by pytest as a plugin, below
    from ovsphere.testing.transport import OvsVm

pytestmark = pytest.mark.functional
# Until tests/conftest.py lists it (then this line can go).
VDS_A = "50 2a 00 00 00 00 00 0a"
VDS_B = "50 2a 00 00 00 00 00 0b"
CHASSIS = Chassis(
    system_id="ovs-esx1",
    ovn_remote="tcp:192.0.2.1:6642",
    encap_type="geneve",
    encap_ip="198.51.100.11",
    bridge_mappings=(("physnet1", "br-phy"),),
)


def desired(vm: OvsVm, *patches: Patch) -> NodeDesired:
    return NodeDesired(
        chassis=CHASSIS,
        trunks=(Trunk(VDS_A, vm.nics["eth1"].upper()), Trunk(VDS_B, vm.nics["eth2"])),
        patches=patches,
    )


P101 = Patch(VDS_A, 101, "vm1-0", "00:50:56:00:01:01", "uuid-vm1")
P102 = Patch(VDS_A, 102, "vm2-0", "00:50:56:00:01:02", "uuid-vm2")
P201 = Patch(VDS_B, 201, "vm3-0", "00:50:56:00:02:01", "uuid-vm3")


def test_apply_builds_everything_once(ovs_vm: OvsVm) -> None:
    want = desired(ovs_vm, P101, P102, P201)
    with NodeConnection(ovs_vm.remote) as conn:
        actions = apply_node(conn, want)
        kinds = [a.kind for a in actions]
        assert kinds.count("add-bridge") == 3  # br-int, br-trunk1, br-trunk2
        assert kinds.count("add-trunk-nic") == 2 and kinds.count("add-patch") == 3
        assert kinds[-1] == "set-chassis"

        seen = read_node(conn)
        assert seen.trunks == {VDS_A: "br-trunk1", VDS_B: "br-trunk2"}
        assert sorted(seen.patches, key=lambda p: p.vlan) == [P101, P102, P201]
        assert seen.chassis == CHASSIS
        assert seen.nics[ovs_vm.nics["eth1"]] == "eth1"
        assert plan_node(seen, want) == []

        before = ovs_vm.next_cfg()
        assert apply_node(conn, want) == []
        assert ovs_vm.next_cfg() == before  # no transaction at all

    # What ovs-vsctl (and so ovn-controller) sees.
    vsctl = ovs_vm.vsctl

    def get(*args: str) -> str:
        return vsctl("get", *args).replace('"', "")

    assert get("bridge", "br-int", "datapath_type", "fail_mode") == "netdev\nsecure"
    assert vsctl("list-ports", "br-trunk1").split() == ["eth1", "pt1-101", "pt1-102"]
    assert vsctl("list-ports", "br-trunk2").split() == ["eth2", "pt2-201"]
    assert get("bridge", "br-trunk2", "datapath_type") == "netdev"
    assert get("port", "pt1-102", "tag") == "102"
    assert get("interface", "pt1-102", "type", "options:peer") == "patch\npi1-102"
    assert get("interface", "pi1-102", "type", "options:peer") == "patch\npt1-102"
    assert get("interface", "pi2-201", "external_ids:iface-id") == "vm3-0"
    assert get("interface", "pi2-201", "external_ids:attached-mac") == "00:50:56:00:02:01"
    assert get("interface", "pi2-201", "external_ids:vm-uuid") == "uuid-vm3"
    assert get("interface", "pi2-201", "external_ids:ovsphere\\:owner") == "ovsphere"
    assert get("interface", "pi2-201", "external_ids:ovsphere\\:vlan") == "201"
    for port in ("pt1-101", "eth1"):
        assert get("port", port, "external_ids:ovsphere\\:owner") == "ovsphere"
    assert get("interface", "eth1", "error") == "[]"
    ids = get("open_vswitch", ".", "external_ids")
    for key in (
        "system-id=ovs-esx1",
        "ovn-remote=tcp:192.0.2.1:6642",
        "ovn-encap-type=geneve",
        "ovn-encap-ip=198.51.100.11",
        "ovn-bridge-datapath-type=netdev",
        "ovn-bridge-mappings=physnet1:br-phy",
    ):
        assert key in ids
    assert PROBE_BRIDGE not in vsctl("list-br").split()


def test_only_the_unwanted_pair_goes_and_strangers_stay(ovs_vm: OvsVm) -> None:
    # As ovn-controller or an operator would leave it: br-int exists (not ovsphere's),
    # with a port of its own, and a bridge ovsphere never made, with a port and a key.
    vsctl = ovs_vm.vsctl
    vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
          "fail_mode=secure", "--", "add-port", "br-int", "tap-other", "--", "set",
          "interface", "tap-other", "type=internal")
    vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
          "external_ids:site=lab", "--", "add-port", "br-phy", "vxlan-x", "--", "set",
          "interface", "vxlan-x", "type=vxlan", "options:remote_ip=192.0.2.9")
    vsctl("set", "open_vswitch", ".", "external_ids:operator-note=keep")
    strangers = {
        (table, name): vsctl("get", table, name, "_uuid")
        for table, name in (("bridge", "br-int"), ("port", "tap-other"), ("bridge", "br-phy"),
                            ("port", "vxlan-x"), ("port", "br-phy"))
    }

    with NodeConnection(ovs_vm.remote) as conn:
        apply_node(conn, desired(ovs_vm, P101, P102, P201))
        actions = apply_node(conn, desired(ovs_vm, P101, P201))
        assert [a.kind for a in actions] == ["del-patch"]
        assert "vlan 102" in actions[0].detail
        seen = read_node(conn)
        assert sorted(p.vlan for p in seen.patches) == [101, 201]

        # The second vDS goes: its bridge, trunk NIC port and patch pair go with it.
        only_a = replace(desired(ovs_vm, P101), trunks=desired(ovs_vm).trunks[:1])
        kinds = sorted(a.kind for a in apply_node(conn, only_a))
        assert kinds == ["del-bridge", "del-port"]  # br-trunk2; pi2-201 on br-int
        assert read_node(conn).trunks == {VDS_A: "br-trunk1"}
        assert apply_node(conn, only_a) == []

    assert "pt1-102" not in vsctl("list-ports", "br-trunk1").split()
    assert sorted(vsctl("list-ports", "br-int").split()) == ["pi1-101", "tap-other"]
    assert sorted(vsctl("list-br").split()) == ["br-int", "br-phy", "br-trunk1"]
    for (table, name), uuid in strangers.items():
        assert vsctl("get", table, name, "_uuid") == uuid
    assert vsctl("get", "bridge", "br-int", "external_ids") == "{}"  # still not ovsphere's
    assert vsctl("get", "bridge", "br-phy", "external_ids:site") == "lab"
    assert vsctl("get", "open_vswitch", ".", "external_ids:operator-note") == "keep"


def test_apply_and_observe_returns_the_node_as_it_is_after(ovs_vm: OvsVm) -> None:
    with NodeConnection(ovs_vm.remote) as conn:
        actions, after = apply_and_observe(conn, desired(ovs_vm, P101, P201))
        assert "add-patch" in [a.kind for a in actions]
        now = read_node(conn)  # re-read once the transaction is in: it shows the change
        assert (after.patches, after.trunks, after.chassis) == (now.patches, now.trunks, CHASSIS)
        assert sorted(after.patches, key=lambda p: p.vlan) == [P101, P201]

        before = ovs_vm.next_cfg()
        actions, again = apply_and_observe(conn, desired(ovs_vm, P101, P201))
        assert actions == [] and again.patches == after.patches  # the read it planned from
        assert ovs_vm.next_cfg() == before

        actions, fewer = apply_and_observe(conn, desired(ovs_vm, P101))
        assert [a.kind for a in actions] == ["del-patch"]
        assert fewer.patches == read_node(conn).patches == (P101,)


def test_a_changed_binding_is_updated_in_place(ovs_vm: OvsVm) -> None:
    with NodeConnection(ovs_vm.remote) as conn:
        apply_node(conn, desired(ovs_vm, P101))
        uuid = ovs_vm.vsctl("get", "interface", "pi1-101", "_uuid")
        moved = replace(P101, iface_id="vm9-0", mac="00:50:56:00:09:09", vm_uuid="uuid-vm9")
        actions = apply_node(conn, desired(ovs_vm, moved))
        assert [a.kind for a in actions] == ["update-patch"]
        assert read_node(conn).patches == (moved,)
    assert ovs_vm.vsctl("get", "interface", "pi1-101", "_uuid") == uuid
    iface_id = ovs_vm.vsctl("get", "interface", "pi1-101", "external_ids:iface-id")
    assert iface_id.strip('"') == "vm9-0"


def test_a_broken_pair_is_remade(ovs_vm: OvsVm) -> None:
    with NodeConnection(ovs_vm.remote) as conn:
        apply_node(conn, desired(ovs_vm, P101))
        ovs_vm.vsctl("set", "port", "pt1-101", "tag=999")  # someone broke the access VLAN
        assert read_node(conn).patches == ()
        kinds = [a.kind for a in apply_node(conn, desired(ovs_vm, P101))]
        assert kinds == ["del-port", "del-port", "add-patch"]
        assert read_node(conn).patches == (P101,)
    assert ovs_vm.vsctl("get", "port", "pt1-101", "tag") == "101"


def test_a_trunk_nic_that_is_not_there_is_named(ovs_vm: OvsVm) -> None:
    want = NodeDesired(CHASSIS, (Trunk(VDS_A, "00:50:56:aa:bb:cc"),), (P101,))
    with NodeConnection(ovs_vm.remote) as conn:
        with pytest.raises(TrunkNicMissing, match="00:50:56:aa:bb:cc"):
            apply_node(conn, want)
        assert read_node(conn).bridges == ()  # nothing written, the probe bridge gone
