"""Each vDS behaviour the trick depends on, proved by a frame that passes or is dropped.

vm4 is on esx1, vm3 on esx3; both on network "fid" through their OVS VMs.
Each test breaks one vSphere setting through the vSphere layer, shows the
traffic fail the way it would on ESX, then restores it and shows it work.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import pytest
from pyVmomi import vim

from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.model import PortEdit, PortSetting, VlanRange
from ovsphere.testing import frames
from ovsphere.testing.lab import wait_for_no_ping, wait_for_ping
from ovsphere.vsphere.ports import PortQuery, fetch_ports, reconfigure_ports
from ovsphere.vsphere.prepare import assign_vlans, prepare
from ovsphere.vsphere.specs import setting_to_vim
from ovsphere.vsphere.tasks import wait_for_tasks

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fid(lab):
    b4 = lab.bind("vm4", "fid", 204, "10.2.0.4/24")
    b3 = lab.bind("vm3", "fid", 203, "10.2.0.3/24")
    assert (b4.host, b3.host) == ("esx1", "esx3")
    wait_for_ping(lab, "vm4", "10.2.0.3")
    return b4, b3


def port_of(lab, vm_name, nic=0):
    inv = lab.inventory()
    vm = next(v for v in inv.vms if v.name == vm_name)
    switch = next(s for s in inv.switches if s.uuid == vm.nics[nic].backing.switch_uuid)
    return switch, vm.nics[nic].backing.port_key


@contextmanager
def port_changed(lab, vm_name, **fields):
    """Override some of a port's settings, then put back what it had."""
    switch, key = port_of(lab, vm_name)
    with lab.connection() as conn:
        (before,) = fetch_ports(conn, switch.moref, PortQuery(keys=[key]))
        reconfigure_ports(conn, switch.moref, [PortEdit(key, PortSetting(**fields))])
    try:
        yield
    finally:
        with lab.connection() as conn:
            restore = {k: getattr(before.setting, k) for k in fields}
            reconfigure_ports(conn, switch.moref, [PortEdit(key, PortSetting(**restore))])


def test_vlan_isolation_between_two_vm_ports_on_one_host(lab, fid):
    # vm1 is on esx1 too, on its own VLAN: vm4's frames must not reach it ...
    lab.run("vm1", "ip", "addr", "replace", "10.2.0.99/24", "dev", "eth0")
    switch, key = port_of(lab, "vm1")
    try:
        assert lab.ping("vm4", "10.2.0.99", count=3) == 0
        # ... until vCenter puts both ports on one VLAN: the proxy switch joins them.
        with lab.connection() as conn:
            assign_vlans(conn, switch, {key: 204})
        wait_for_ping(lab, "vm4", "10.2.0.99")
    finally:
        with lab.connection() as conn:
            assign_vlans(conn, switch, {key: 101})
        lab.run("vm1", "ip", "addr", "del", "10.2.0.99/24", "dev", "eth0", check=False)
    wait_for_no_ping(lab, "vm4", "10.2.0.99")


def test_blocked_port_passes_nothing(lab, fid):
    with port_changed(lab, "vm4", blocked=True):
        wait_for_no_ping(lab, "vm4", "10.2.0.3")
    wait_for_ping(lab, "vm4", "10.2.0.3")


def test_promiscuous_off_on_the_ovs_vm_port_breaks_traffic(lab, fid):
    with port_changed(lab, "ovs-esx1", promiscuous=False):
        wait_for_no_ping(lab, "vm4", "10.2.0.3")
    wait_for_ping(lab, "vm4", "10.2.0.3")


def test_forged_transmits_rejected_on_the_ovs_vm_port_breaks_traffic(lab, fid):
    with port_changed(lab, "ovs-esx1", forged_transmits=False):
        wait_for_no_ping(lab, "vm4", "10.2.0.3")
    wait_for_ping(lab, "vm4", "10.2.0.3")


def test_a_frame_the_guest_tagged_is_dropped(lab, fid):
    b4, _ = fid
    for vlan, expected in ((None, True), (204, False), (7, False)):
        mark = frames.marker()
        catcher = frames.Catcher(lab.ns("ovs-esx1"), "eth0", mark)
        frames.send(lab.ns("vm4"), "eth0", frames.frame(b4.mac, mark, vlan=vlan))
        seen = catcher.close()
        assert (seen > 0) is expected, f"guest tag {vlan}: {seen} frames reached the OVS VM"


def test_a_portgroup_without_uplinks_leaves_the_host_nowhere(lab, fid):
    b4, _ = fid
    inv = lab.inventory()
    switch = inv.switch_named("dvs0")
    pg = inv.portgroup_named(switch, "ovsphere-isolated")
    uplink_wire = "up0x0"  # esx1's uplink of vDS 0, as the fabric sees it

    def frames_on_the_wire() -> int:
        mark = frames.marker()
        catcher = frames.Catcher(lab.layout.fabric, uplink_wire, mark)
        frames.send(lab.ns("vm4"), "eth0", frames.frame(b4.mac, mark))
        return catcher.close()

    assert frames_on_the_wire() == 0
    leaky = replace(pg.teaming, active_uplinks=switch.uplink_names[:1])
    with lab.connection() as conn:
        _set_teaming(conn, pg, leaky)
    try:
        for _ in range(50):
            if frames_on_the_wire() > 0:
                break
        else:
            pytest.fail("with an active uplink the frame should leave the host")
    finally:
        with lab.connection() as conn:
            prepare(
                conn,
                dvs="dvs0",
                portgroup="ovsphere-isolated",
                rule=OvsVmRule(attribute=None),
                trunk=(VlanRange(0, 4094),),
                min_ports=64,
                remove_uplinks=True,
            )
    for _ in range(50):
        if frames_on_the_wire() == 0:
            break
    else:
        pytest.fail("after prepare the frame still leaves the host")


def _set_teaming(conn, pg, teaming):
    """Give the port group uplinks, as an operator might by mistake."""

    def run(si):
        ref = vim.dvs.DistributedVirtualPortgroup(pg.moref, si._stub)
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            configVersion=ref.config.configVersion,
            defaultPortConfig=setting_to_vim(PortSetting(), teaming=teaming),
        )
        wait_for_tasks(si, [ref.ReconfigureDVPortgroup_Task(spec)], "add an uplink")

    conn.call("add an uplink", run)
