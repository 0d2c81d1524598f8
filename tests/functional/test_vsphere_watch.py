"""The change stream: migrations, NICs, and a vCenter restart."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from pyVmomi import vim

from ovsphere.lab.simulator import Simulator
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.model import VlanRange
from ovsphere.vsphere import prepare as vp
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.ports import PortQuery, fetch_ports
from ovsphere.vsphere.tasks import wait_for_tasks
from ovsphere.vsphere.watch import (
    HostChanged,
    MigrationDone,
    MigrationStarted,
    NicAdded,
    NicRemoved,
    Resynced,
    VmAdded,
    VmRemoved,
    Watcher,
)

pytestmark = pytest.mark.functional
PG = "ovsphere-isolated"


def collect(watcher, want, timeout=30.0):
    """Changes until ``want(changes)`` holds; fails after ``timeout``."""
    seen = []
    deadline = time.monotonic() + timeout
    for change in watcher.changes(until=lambda: time.monotonic() > deadline):
        seen.append(change)
        if want(seen):
            return seen
    pytest.fail(f"watch did not see what was expected within {timeout} s; saw {seen}")


def setup_vm(vc):
    vp.prepare(
        vc, dvs="DVS0", portgroup=PG, rule=OvsVmRule(), trunk=(VlanRange(0, 4094),), min_ports=16
    )
    inv = read_inventory(vc)
    switch = inv.switch_named("DVS0")
    pg = inv.portgroup_named(switch, PG)
    vm = create_vm(vc, inv, "mover", switch.member_hosts[0], [NicSpec(pg)])
    inv = read_inventory(vc)
    nic = inv.vm(vm).nics[0]
    vp.assign_vlans(vc, switch, {nic.backing.port_key: 42})
    return inv, switch, vm, nic


def test_migration_is_seen_as_two_events_and_a_host_change(vc, vcsim):
    inv, switch, vm, nic = setup_vm(vc)
    watcher = Watcher(vc, max_wait=1)
    list(watcher.changes(until=lambda: bool(watcher.vms)))  # prime: first full read
    assert vm in watcher.vms
    dest = switch.member_hosts[1]
    si = vc.si
    task = vim.VirtualMachine(vm, si._stub).MigrateVM_Task(
        host=vim.HostSystem(dest, si._stub), priority="defaultPriority"
    )
    changes = collect(watcher, lambda cs: any(isinstance(c, MigrationDone) for c in cs))
    wait_for_tasks(si, [task], "migrate")
    kinds = [type(c) for c in changes]
    assert MigrationStarted in kinds and HostChanged in kinds
    assert kinds.index(MigrationStarted) < kinds.index(MigrationDone)
    started = next(c for c in changes if isinstance(c, MigrationStarted))
    assert (started.vm, started.source_host, started.dest_host) == (vm, inv.vm(vm).host, dest)
    moved = next(c for c in changes if isinstance(c, HostChanged))
    assert moved.new_host == dest and moved.vm.nics[0].backing.port_key == nic.backing.port_key
    (port,) = fetch_ports(vc, switch.moref, PortQuery(keys=[nic.backing.port_key]))
    assert port.setting.vlan_id == 42 and port.connectee.vm == vm
    watcher.close()


def test_nic_changes_are_seen(vc):
    inv, switch, vm, nic = setup_vm(vc)
    watcher = Watcher(vc, max_wait=1)
    list(watcher.changes(until=lambda: bool(watcher.vms)))
    si = vc.si
    ref = vim.VirtualMachine(vm, si._stub)
    device = next(d for d in ref.config.hardware.device if d.key == nic.key)
    spec = vim.vm.ConfigSpec(
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)]
    )
    wait_for_tasks(si, [ref.ReconfigVM_Task(spec)], "remove NIC")
    changes = collect(watcher, lambda cs: any(isinstance(c, NicRemoved) for c in cs))
    assert next(c for c in changes if isinstance(c, NicRemoved)).nic.key == nic.key
    pg = inv.portgroup_named(switch, PG)
    create_vm(vc, inv, "newcomer", switch.member_hosts[0], [NicSpec(pg)])
    changes = collect(watcher, lambda cs: any(isinstance(c, VmAdded) for c in cs))
    added = next(c for c in changes if isinstance(c, VmAdded))
    assert added.vm.name == "newcomer" and added.vm.nics[0].backing.port_key
    assert not any(isinstance(c, NicAdded) for c in changes)
    watcher.close()


def test_watcher_survives_a_simulator_restart(vcsim, vc, vcsim_binary, tmp_path):
    _, _, vm, _ = setup_vm(vc)
    watcher = Watcher(vc, max_wait=1, retry=0.2, max_retry=1)
    list(watcher.changes(until=lambda: bool(watcher.vms)))
    assert vm in watcher.vms
    options = vcsim.options
    port = vcsim.port
    vcsim.stop()
    fresh = Simulator.start(
        replace(options, port=port), binary=vcsim_binary, log_path=tmp_path / "restarted.log"
    )
    try:
        changes = collect(watcher, lambda cs: any(isinstance(c, Resynced) for c in cs), 60)
        removed = [c.vm.moref for c in changes if isinstance(c, VmRemoved)]
        assert vm in removed  # the new vCenter has no such VM: nothing is silently missed
        assert vm not in watcher.vms
        inv2 = read_inventory(vc)
        pg = inv2.portgroup_named(inv2.switch_named("DVS0"), "DC0_DVPG0")
        create_vm(
            vc, inv2, "after-restart", inv2.switch_named("DVS0").member_hosts[0], [NicSpec(pg)]
        )
        changes = collect(watcher, lambda cs: any(isinstance(c, VmAdded) for c in cs))
        assert any(c.vm.name == "after-restart" for c in changes if isinstance(c, VmAdded))
    finally:
        watcher.close()
        fresh.stop()
