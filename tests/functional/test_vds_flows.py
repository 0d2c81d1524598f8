"""The lab's proxy-switch flows, judged by real OVS (ofproto/trace).

Each test proves one vDS behaviour by a frame that is delivered or dropped.
Ports: 1 and 2 are VM access ports, 3 an OVS VM trunk port, 4 an uplink.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ovsphere.lab.vds import ProxyPort, Uplink, proxy_switch_flows, vlan_prefixes
from ovsphere.logic.port_policy import held_port, trunk_port, vm_port
from ovsphere.model import PortSetting, VlanMode, VlanRange

pytestmark = pytest.mark.functional

VM1, VM2, OVS = "00:50:56:00:00:01", "00:50:56:00:00:02", "00:50:56:00:00:03"
OTHER = "00:50:56:00:00:99"
BCAST = "ff:ff:ff:ff:ff:ff"
FULL = (VlanRange(0, 4094),)


def ports(vm1=None, vm2=None, ovs=None, uplinks=()):
    return [
        ProxyPort(1, "1", VM1, vm1 or vm_port(101), uplinks),
        ProxyPort(2, "2", VM2, vm2 or vm_port(102), uplinks),
        ProxyPort(3, "3", OVS, ovs or trunk_port(FULL), uplinks),
    ]


@pytest.fixture
def bridge(proxy_bridge):
    for name, ofport in (("vm1", 1), ("vm2", 2), ("ovs", 3), ("uplink", 4)):
        proxy_bridge.add_port(name, ofport)
    return proxy_bridge


UPLINKS = (Uplink(4, "uplink1"),)


def load(bridge, port_list, uplinks=UPLINKS):
    bridge.load(proxy_switch_flows(port_list, uplinks))


def test_vm_frames_reach_the_ovs_vm_tagged_and_come_back_untagged(bridge):
    load(bridge, ports())
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OTHER}") == "push_vlan(vid=101,pcp=0),3"
    assert bridge.trace(f"in_port=3,dl_vlan=101,dl_src={OTHER},dl_dst={VM1}") == "pop_vlan,1"
    assert bridge.trace(f"in_port=3,dl_vlan=102,dl_src={OTHER},dl_dst={VM1}") == "drop"


def test_vlan_isolation_between_two_vm_ports_on_one_host(bridge):
    load(bridge, ports())
    assert "2" not in bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={VM2}").split(",")
    bcast = bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={BCAST}")
    assert bcast == "push_vlan(vid=101,pcp=0),3"
    # Same VLAN: the vDS switches them locally (and the promiscuous trunk sees a copy).
    load(bridge, ports(vm2=vm_port(101)))
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={VM2}") == "2,push_vlan(vid=101,pcp=0),3"


def test_blocked_port_and_port_without_vlan_pass_nothing(bridge):
    for setting in (
        held_port(),
        replace(vm_port(101), blocked=True),
        PortSetting(vlan_mode=VlanMode.NONE, vlan_id=0, blocked=False),
    ):
        load(bridge, ports(vm1=setting))
        assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={BCAST}") == "drop"
        assert bridge.trace(f"in_port=3,dl_vlan=101,dl_src={OTHER},dl_dst={VM1}") == "drop"


def test_guest_tagged_frame_is_dropped_at_a_vst_port(bridge):
    load(bridge, ports())
    assert bridge.trace(f"in_port=1,dl_vlan=101,dl_src={VM1},dl_dst={OTHER}") == "drop"
    assert bridge.trace(f"in_port=1,dl_vlan=7,dl_src={VM1},dl_dst={OTHER}") == "drop"


def test_promiscuous_off_on_the_ovs_vm_port_starves_it(bridge):
    load(bridge, ports(ovs=replace(trunk_port(FULL), promiscuous=False)))
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OTHER}") == "drop"
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OVS}") == "push_vlan(vid=101,pcp=0),3"
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={BCAST}") == "push_vlan(vid=101,pcp=0),3"


def test_forged_transmits_rejected_on_the_ovs_vm_port_drops_its_relayed_frames(bridge):
    load(bridge, ports(ovs=replace(trunk_port(FULL), forged_transmits=False)))
    assert bridge.trace(f"in_port=3,dl_vlan=101,dl_src={OTHER},dl_dst={VM1}") == "drop"
    assert bridge.trace(f"in_port=3,dl_vlan=101,dl_src={OVS},dl_dst={VM1}") == "pop_vlan,1"
    # and a VM cannot spoof another MAC
    assert bridge.trace(f"in_port=1,dl_src={OTHER},dl_dst={OVS}") == "drop"


def test_trunk_carries_only_its_ranges(bridge):
    load(bridge, ports(ovs=trunk_port((VlanRange(100, 101),))))
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OTHER}") == "push_vlan(vid=101,pcp=0),3"
    assert bridge.trace(f"in_port=2,dl_src={VM2},dl_dst={OTHER}") == "drop"
    assert bridge.trace(f"in_port=3,dl_vlan=102,dl_src={OTHER},dl_dst={VM2}") == "drop"
    assert bridge.trace(f"in_port=3,dl_src={OTHER},dl_dst={VM2}") == "drop"  # untagged


def test_no_uplink_in_teaming_leaves_the_host_nowhere(bridge):
    load(bridge, ports())
    for dst in (BCAST, OTHER):
        assert "4" not in bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={dst}").split(",")
    load(bridge, ports(uplinks=("uplink1",)))
    assert bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OTHER}").endswith(",4")
    assert "4" not in bridge.trace(f"in_port=1,dl_src={VM1},dl_dst={OVS}").split(",")


@pytest.mark.unit
@pytest.mark.parametrize(("start", "end"), [(0, 4094), (1, 4094), (100, 199), (7, 7), (5, 64)])
def test_vlan_prefixes_cover_exactly_the_range(start, end):
    covered = set()
    for value, mask in vlan_prefixes(start, end):
        block = {v for v in range(4096) if v & mask == value}
        assert not covered & block
        covered |= block
    assert covered == set(range(start, end + 1))
