"""prepare, check and inventory against the extended simulator."""

from __future__ import annotations

import math

import pytest
from pyVmomi import vim

from ovsphere.errors import ConflictError, NotFoundError, PreconditionError
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.logic.checks import CheckInput, Status, failed, run_checks
from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.model import Binding, PortEdit, VlanMode, VlanRange
from ovsphere.vsphere import prepare as vp
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.ports import PortQuery, fetch_ports, reconfigure_ports

pytestmark = pytest.mark.functional

PG = "ovsphere-isolated"
TRUNK = (VlanRange(0, 4094),)
RULE = OvsVmRule()


def run_prepare(vc, **kw):
    args = {"dvs": "DVS0", "portgroup": PG, "rule": RULE, "trunk": TRUNK, "min_ports": 64}
    args.update(kw)
    return vp.prepare(vc, **args)


def checks(vc):
    state = vp.read_state(vc, "DVS0", PG, RULE)
    results = run_checks(CheckInput(state.inventory, "DVS0", PG, state.ports, state.ovs_vms, TRUNK))
    return {c.name: c for c in results}, results


def deploy(vc, apps=2):
    inv = read_inventory(vc)
    switch = inv.switch_named("DVS0")
    pg = inv.portgroup_named(switch, PG)
    hosts = [h for h in inv.hosts if h.moref in switch.member_hosts]
    made = {}
    for h in hosts:
        made[f"ovs-{h.name}"] = create_vm(vc, inv, f"ovs-{h.name}", h.moref, [NicSpec(pg)])
    for i in range(apps):
        made[f"app-{i}"] = create_vm(
            vc, inv, f"app-{i}", hosts[i % len(hosts)].moref, [NicSpec(pg)]
        )
    return made


def test_prepare_on_an_empty_vds_then_check_passes(vc):
    report = run_prepare(vc)
    assert report.created
    inv = read_inventory(vc)
    pg = inv.portgroup_named(inv.switch_named("DVS0"), PG)
    assert pg.binding is Binding.STATIC and pg.num_ports >= 64
    assert not pg.teaming.uplinks
    assert pg.overrides.vlan and pg.overrides.security and pg.overrides.block
    assert pg.default.blocked is True and not pg.reset_at_disconnect

    by_name, _ = checks(vc)
    assert by_name["ovs-vm-per-host"].status is Status.FAIL  # no OVS VMs yet

    deploy(vc)
    report = run_prepare(vc)
    assert not report.created and report.portgroup_changes == ()
    kinds = sorted(e.reason.split(":")[0] for e in report.port_edits)
    assert kinds.count("OVS VM trunk") == 3
    assert len(report.waiting) == 2  # the two VMs wait for their VLAN, blocked

    by_name, results = checks(vc)
    assert not failed(results), [c for c in results if c.status is Status.FAIL]
    assert all(c.status is Status.PASS for c in results), results

    # idempotent: a second prepare changes nothing
    again = run_prepare(vc)
    assert again.port_edits == () and again.tasks == 0 and again.portgroup_changes == ()


def test_portgroup_with_uplinks_fails_check_and_prepare_refuses(vc):
    content = vc.si.content
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.DistributedVirtualSwitch], True
    )
    dvs = next(d for d in view.view if d.name == "DVS0")
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=PG, type="earlyBinding", numPorts=8)
    task = dvs.AddDVPortgroup_Task([spec])
    assert task.info.state in ("success", "running")
    inv = read_inventory(vc)
    pg = inv.portgroup_named(inv.switch_named("DVS0"), PG)
    assert pg.teaming.active_uplinks, "vCenter gives a new port group the switch's uplinks"

    by_name, results = checks(vc)
    assert by_name["uplinks"].status is Status.FAIL and failed(results)
    assert "loop" in by_name["uplinks"].detail

    with pytest.raises(PreconditionError) as err:
        run_prepare(vc)
    assert "--remove-uplinks" in err.value.fix
    inv2 = read_inventory(vc)
    assert inv2.portgroup_named(inv2.switch_named("DVS0"), PG) == pg  # nothing changed

    report = run_prepare(vc, remove_uplinks=True)
    assert any("-> none" in c for c in report.portgroup_changes)
    by_name, _ = checks(vc)
    assert by_name["uplinks"].status is Status.PASS


def test_500_vm_ports_get_distinct_vlans_in_batched_calls(vc):
    run_prepare(vc, min_ports=520)
    inv = read_inventory(vc)
    switch = inv.switch_named("DVS0")
    pg = inv.portgroup_named(switch, PG)
    host = switch.member_hosts[0]
    for i in range(500):
        create_vm(vc, inv, f"bulk-{i}", host, [NicSpec(pg)], power_on=False)
    ports = fetch_ports(vc, switch.moref, PortQuery(portgroups=[pg.key], connected=True))
    assert len(ports) == 500
    vlans = {p.key: 100 + i for i, p in enumerate(sorted(ports, key=lambda p: p.key))}

    tasks = vp.assign_vlans(vc, switch, vlans)
    assert tasks == math.ceil(500 / 200)

    some = sorted(vlans)[::50]
    back = fetch_ports(vc, switch.moref, PortQuery(keys=some))
    assert sorted(p.key for p in back) == some
    for p in back:
        assert p.setting.vlan_mode is VlanMode.ACCESS and p.setting.vlan_id == vlans[p.key]
        assert p.setting.blocked is False and p.setting.promiscuous is False
        assert p.connectee is not None and p.portgroup_key == pg.key
    all_back = fetch_ports(vc, switch.moref, PortQuery(portgroups=[pg.key], connected=True))
    assert len({p.setting.vlan_id for p in all_back}) == 500
    assert vp.assign_vlans(vc, switch, vlans) == 0  # already so: no task

    by_name, _ = checks(vc)
    assert by_name["vlan-unique"].status is Status.PASS
    assert "500 VM ports" in by_name["vlan-unique"].detail


def test_stale_config_version_and_unknown_port_become_ovsphere_errors(vc):
    run_prepare(vc)
    inv = read_inventory(vc)
    switch = inv.switch_named("DVS0")
    pg = inv.portgroup_named(switch, PG)
    port = fetch_ports(vc, switch.moref, PortQuery(portgroups=[pg.key]))[0]
    vp.assign_vlans(vc, switch, {port.key: 10})
    stale = PortEdit(port.key, port.setting, config_version=port.config_version)
    with pytest.raises(ConflictError) as err:
        reconfigure_ports(vc, switch.moref, [stale])
    assert err.value.temporary
    with pytest.raises(NotFoundError):
        vp.assign_vlans(vc, switch, {"no-such-port": 11})
    with pytest.raises(NotFoundError, match="no vDS named"):
        run_prepare(vc, dvs="nope")
