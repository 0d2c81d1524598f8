from dataclasses import replace

import pytest

from ovsphere.logic.ovs_vms import OvsVmRule, find_ovs_vms
from ovsphere.logic.plan import plan_portgroup, plan_ports
from ovsphere.logic.port_policy import PORTGROUP_DEFAULT, differences, trunk_port, vm_port
from ovsphere.model import Binding, OverridePolicy, PortSetting, Teaming, VlanMode, VlanRange
from ovsphere.testing.builders import FULL_TRUNK, free_port, isolated_pg, ports_for, world

pytestmark = pytest.mark.unit


def test_missing_portgroup_is_created_with_spare_ports():
    plan = plan_portgroup(None, min_ports=64, used_ports=0)
    assert plan.create and plan.num_ports == 64
    assert plan_portgroup(None, min_ports=8, used_ports=100).num_ports == 125


def test_good_portgroup_needs_nothing():
    plan = plan_portgroup(isolated_pg(), min_ports=64, used_ports=10)
    assert not plan.needed and plan.num_ports == 64


def test_every_broken_setting_is_listed():
    pg = isolated_pg(
        binding=Binding.EPHEMERAL,
        num_ports=4,
        auto_expand=False,
        overrides=OverridePolicy(),
        reset_at_disconnect=True,
        teaming=Teaming(("uplink1",), ("uplink2",)),
        default=PortSetting(blocked=False, promiscuous=True),
    )
    plan = plan_portgroup(pg, min_ports=64, used_ports=2)
    text = "\n".join(plan.changes)
    for word in (
        "static",
        "ports 4 -> 64",
        "auto-expand",
        "overrides",
        "disconnects",
        "uplink1, uplink2 -> none",
        "blocked False -> True",
        "promiscuous True -> False",
    ):
        assert word in text
    assert plan.num_ports == 64


def test_ports_get_their_shapes_and_a_second_plan_is_empty():
    inv = world(hosts=2)
    ovs = find_ovs_vms(inv, inv.portgroups, OvsVmRule())
    raw = [replace(p, setting=PORTGROUP_DEFAULT) for p in ports_for(inv)]
    raw.append(free_port("99", setting=vm_port(300)))  # a leftover VLAN on a free port
    plan = plan_ports(raw, ovs, FULL_TRUNK)
    by_key = {e.key: e for e in plan.edits}
    assert by_key["11"].setting == trunk_port(FULL_TRUNK)
    assert by_key["99"].setting.blocked is True
    # VM ports without a VLAN stay blocked and are reported waiting
    assert set(plan.waiting) == {"211", "221"}
    assert "211" not in by_key  # already blocked and tight: nothing to change
    applied = [
        replace(p, setting=merge(p.setting, by_key[p.key].setting)) if p.key in by_key else p
        for p in raw
    ]
    assert plan_ports(applied, ovs, FULL_TRUNK).edits == ()


def merge(current: PortSetting, desired: PortSetting) -> PortSetting:
    fields = {k: v for k, v in vars(desired).items() if v is not None and v != ()}
    if desired.vlan_mode is VlanMode.TRUNK:
        fields["vlan_id"] = None
    return replace(current, **fields)


def test_vm_port_with_own_vlan_is_unblocked_and_duplicates_are_held():
    inv = world(hosts=2)
    ovs = find_ovs_vms(inv, inv.portgroups, OvsVmRule())
    ports = ports_for(inv, vlans={"211": 5, "221": 5})
    ports = [
        replace(p, setting=replace(p.setting, blocked=True, promiscuous=True))
        if p.key in ("211", "221")
        else p
        for p in ports
    ]
    plan = plan_ports(ports, ovs, FULL_TRUNK)
    assert set(plan.waiting) == {"211", "221"}
    assert all(e.setting.blocked for e in plan.edits)
    ports = ports_for(inv, vlans={"211": 5, "221": 6})
    ports = [
        replace(p, setting=replace(p.setting, blocked=True)) if p.key == "211" else p for p in ports
    ]
    plan = plan_ports(ports, ovs, FULL_TRUNK)
    assert [(e.key, e.setting.blocked) for e in plan.edits] == [("211", False)]
    assert plan.edits[0].config_version == "1"


def test_differences_reads_like_a_change_log():
    assert differences(vm_port(5), vm_port(5)) == []
    assert differences(vm_port(5), vm_port(6)) == ["VLAN 5 -> 6"]
    assert differences(vm_port(5), trunk_port((VlanRange(0, 4094),))) == [
        "VLAN 5 -> trunk 0-4094",
        "promiscuous False -> True",
        "forged transmits False -> True",
        "mac changes False -> True",
    ]
