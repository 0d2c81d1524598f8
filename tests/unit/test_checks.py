from dataclasses import replace

import pytest

from ovsphere.logic.checks import CheckInput, Status, failed, run_checks
from ovsphere.logic.ovs_vms import OvsVmRule, find_ovs_vms
from ovsphere.logic.port_policy import held_port
from ovsphere.model import (
    Binding,
    OverridePolicy,
    PortSetting,
    PowerState,
    Teaming,
    VlanMode,
    VlanRange,
)
from ovsphere.testing.builders import FULL_TRUNK, isolated_pg, ports_for, world

pytestmark = pytest.mark.unit


def judge(inv, ports=None, trunk=FULL_TRUNK, pg_name="ovsphere-isolated"):
    pgs = [p for p in inv.portgroups if p.name == pg_name]
    checks = run_checks(
        CheckInput(
            inv,
            "dvs",
            pg_name,
            ports if ports is not None else ports_for(inv),
            find_ovs_vms(inv, pgs, OvsVmRule()),
            trunk,
        )
    )
    return {c.name: c for c in checks}, checks


def test_a_prepared_world_passes_everything():
    by_name, checks = judge(world())
    assert not failed(checks)
    assert {c.status for c in checks} == {Status.PASS}
    assert {
        "switch",
        "portgroup",
        "uplinks",
        "binding",
        "overrides",
        "ovs-vm-per-host",
        "ovs-vm-ports",
        "vlan-unique",
        "vlan-missing",
        "vlan-spare",
    } <= by_name.keys()


def test_missing_switch_and_portgroup_fail_with_the_fix():
    inv = world()
    checks = run_checks(CheckInput(inv, "nope", "ovsphere-isolated", [], [], FULL_TRUNK))
    assert checks[0].status is Status.FAIL and "dvs" in checks[0].detail
    by_name, _ = judge(inv, pg_name="other")
    assert by_name["portgroup"].status is Status.FAIL
    assert "ovsphere prepare" in by_name["portgroup"].fix


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"teaming": Teaming(active_uplinks=("uplink1",))}, "uplinks"),
        ({"teaming": Teaming(standby_uplinks=("uplink2",))}, "uplinks"),
        ({"uplink": True}, "uplinks"),
        ({"binding": Binding.EPHEMERAL}, "binding"),
        ({"overrides": OverridePolicy(vlan=False, security=True, block=True)}, "overrides"),
        ({"overrides": OverridePolicy(vlan=True, security=False, block=True)}, "overrides"),
    ],
)
def test_portgroup_settings_that_break_the_trick_fail(change, check):
    inv = world(pg=isolated_pg(**change))
    by_name, checks = judge(inv)
    assert by_name[check].status is Status.FAIL
    assert failed(checks)


def test_unblocked_default_warns():
    inv = world(pg=isolated_pg(default=PortSetting(blocked=False)))
    by_name, _ = judge(inv)
    assert by_name["default-blocked"].status is Status.WARN


@pytest.mark.parametrize("field", ["promiscuous", "forged_transmits"])
def test_ovs_vm_port_without_promiscuous_or_forged_transmits_fails(field):
    inv = world()
    ports = [
        replace(p, setting=replace(p.setting, **{field: False}))
        if p.setting.vlan_mode is VlanMode.TRUNK
        else p
        for p in ports_for(inv)
    ]
    by_name, _ = judge(inv, ports)
    assert by_name["ovs-vm-ports"].status is Status.FAIL
    assert field.replace("_", " ").split()[0] in by_name["ovs-vm-ports"].detail


def test_ovs_vm_port_in_access_mode_fails():
    inv = world()
    ports = [
        replace(p, setting=replace(p.setting, vlan_mode=VlanMode.ACCESS, vlan_id=5))
        if p.setting.vlan_mode is VlanMode.TRUNK
        else p
        for p in ports_for(inv)
    ]
    by_name, _ = judge(inv, ports)
    assert "not a trunk" in by_name["ovs-vm-ports"].detail


def test_trunk_narrower_than_configured_fails():
    inv = world()
    by_name, _ = judge(inv, ports_for(inv, trunk=(VlanRange(0, 100),)))
    assert by_name["ovs-vm-ports"].status is Status.FAIL


def test_host_without_ovs_vm_with_two_or_powered_off_fails():
    inv = world()
    no_ovs = replace(inv, vms=tuple(v for v in inv.vms if v.name != "ovs-esx2"))
    by_name, _ = judge(no_ovs)
    assert "esx2: 0 OVS VMs" in by_name["ovs-vm-per-host"].detail
    extra = replace(inv.vms[0], moref="vm-x", name="ovs-extra")
    by_name, _ = judge(replace(inv, vms=(*inv.vms, extra)))
    assert "esx1: 2 OVS VMs" in by_name["ovs-vm-per-host"].detail
    off = replace(inv.vms[0], power_state=PowerState.OFF)
    by_name, _ = judge(replace(inv, vms=(off, *inv.vms[1:])))
    assert "poweredOff" in by_name["ovs-vm-per-host"].detail


def test_ovs_vm_found_by_custom_attribute():
    inv = world()
    renamed = tuple(
        replace(v, name=f"transport-{v.host}", attributes={"ovsphere.role": "ovs-vm"})
        if v.name.startswith("ovs-")
        else v
        for v in inv.vms
    )
    inv = replace(inv, vms=renamed)
    found = find_ovs_vms(inv, inv.portgroups, OvsVmRule(name_pattern=None))
    assert len(found) == 3
    assert not find_ovs_vms(inv, inv.portgroups, OvsVmRule(attribute=None))


def test_duplicate_vlans_fail_and_name_the_ports():
    inv = world()
    by_name, _ = judge(inv, ports_for(inv, vlans={"211": 7, "221": 7}))
    c = by_name["vlan-unique"]
    assert c.status is Status.FAIL
    assert "VLAN 7 on ports 211,221" in c.detail


def test_unblocked_vm_port_without_vlan_fails_but_blocked_one_passes():
    inv = world()
    ports = ports_for(inv)
    vm_port = next(p for p in ports if p.key == "211")
    untagged = replace(
        vm_port, setting=PortSetting(vlan_mode=VlanMode.NONE, vlan_id=0, blocked=False)
    )
    by_name, _ = judge(inv, [untagged if p is vm_port else p for p in ports])
    assert by_name["vlan-missing"].status is Status.FAIL and "211" in by_name["vlan-missing"].detail
    held = replace(vm_port, setting=held_port())
    by_name, _ = judge(inv, [held if p is vm_port else p for p in ports])
    assert by_name["vlan-missing"].status is Status.PASS


def test_spare_vlans_warn_under_ten_percent():
    inv = world(hosts=1, vms_per_host=10)
    trunk = (VlanRange(101, 110),)
    by_name, _ = judge(inv, ports_for(inv, trunk=trunk), trunk=trunk)
    assert by_name["vlan-spare"].status is Status.WARN
    assert "0 of 10" in by_name["vlan-spare"].detail
    by_name, _ = judge(inv, ports_for(inv))
    assert by_name["vlan-spare"].status is Status.PASS


def test_vlan_outside_the_trunk_fails():
    inv = world(hosts=1)
    trunk = (VlanRange(0, 50),)
    by_name, _ = judge(inv, ports_for(inv, trunk=trunk), trunk=trunk)
    assert by_name["vlan-in-trunk"].status is Status.FAIL
