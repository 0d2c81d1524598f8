"""vMotion in the extended simulator: MigrateVM_Task / RelocateVM_Task, their events and checks."""

import threading

import pytest
from pyVmomi import vim, vmodl

from ovsphere.lab.simulator import Simulator
from ovsphere.testing.vcsim import TEST_OPTIONS, connect, events, failure, inventory, wait

pytestmark = pytest.mark.functional

VMW = vim.dvs.VmwareDistributedVirtualSwitch
MOVE_EVENTS = ("VmBeingHotMigratedEvent", "VmMigratedEvent", "VmFailedMigrateEvent")
PRIORITY = vim.VirtualMachine.MovePriority.defaultPriority


@pytest.fixture
def slow_vcsim(vcsim_binary, tmp_path):
    """A simulator whose pre-copy is long enough to look at a vMotion half-way."""
    options = TEST_OPTIONS.__class__(**{**TEST_OPTIONS.__dict__, "precopy": 3.0})
    sim = Simulator.start(options, binary=vcsim_binary, log_path=tmp_path / "vcsim.log")
    try:
        yield sim
    finally:
        sim.stop()


def setup(si):
    (dvs,) = inventory(si, vim.DistributedVirtualSwitch)
    vm = sorted(inventory(si, vim.VirtualMachine), key=lambda v: v.name)[0]
    src = vm.runtime.host
    hosts = sorted(inventory(si, vim.HostSystem), key=lambda h: h.name)
    busy = {v.runtime.host for v in inventory(si, vim.VirtualMachine)}
    dest = next(h for h in hosts if h != src)
    idle = next(h for h in hosts if h not in busy)
    return dvs, vm, src, dest, idle


def nic(vm):
    (found,) = [
        d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    return found


def port(dvs, key):
    (found,) = dvs.FetchDVPorts(vim.dvs.PortCriteria(portKey=[key]))
    return found


def give_vlan(dvs, vm, vlan):
    """Let the VM's port group take per-port VLANs and put the VM's port on one."""
    backing = nic(vm).backing.port
    (pg,) = [pg for pg in dvs.portgroup if pg.key == backing.portgroupKey]
    policy = pg.config.policy
    policy.vlanOverrideAllowed = True
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        policy=policy, configVersion=pg.config.configVersion
    )
    wait(pg.ReconfigureDVPortgroup_Task(spec))
    setting = VMW.VmwarePortConfigPolicy(vlan=VMW.VlanIdSpec(vlanId=vlan, inherited=False))
    spec = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=backing.portKey, operation="edit", setting=setting
    )
    wait(dvs.ReconfigureDVPort_Task([spec]))
    return backing.portKey


def test_migrate_announces_the_move_then_moves_the_vm_with_its_port_and_vlan(slow_vcsim):
    si = connect(slow_vcsim)
    dvs, vm, src, dest, _ = setup(si)
    key = give_vlan(dvs, vm, 101)
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=list(MOVE_EVENTS),
    )
    collector = si.content.eventManager.CreateCollectorForEvents(spec)

    task = vm.MigrateVM_Task(host=dest, priority=PRIORITY)

    assert task.info.state == "running"
    (announced,) = events(si, vm, *MOVE_EVENTS)
    assert isinstance(announced, vim.event.VmBeingHotMigratedEvent)
    assert (announced.host.host, announced.destHost.host, announced.vm.vm) == (src, dest, vm)
    assert announced.datacenter.datacenter is not None
    assert announced.computeResource.computeResource == src.parent
    assert announced.fullFormattedMessage == f"Migrating {vm.name} from {src.name} to {dest.name}"
    assert vm.runtime.host == src, "nothing moves before the pre-copy ends"

    wait(task)

    assert vm.runtime.host == dest and vm.summary.runtime.host == dest
    assert vm in dest.vm and vm not in src.vm
    page = sorted(collector.latestPage, key=lambda e: e.key)
    assert [type(e) for e in page] == [vim.event.VmBeingHotMigratedEvent, vim.event.VmMigratedEvent]
    done = page[1]
    assert (done.sourceHost.host, done.host.host) == (src, dest)
    assert (
        done.fullFormattedMessage
        == f"Migration of {vm.name} from {src.name} to {dest.name} completed"
    )
    assert nic(vm).backing.port.portKey == key
    moved = port(dvs, key)
    assert moved.connectee.connectedEntity == vm
    assert moved.config.setting.vlan.vlanId == 101
    assert moved.proxyHost == dest


def test_migration_to_a_host_outside_the_switch_fails_and_changes_nothing(vcsim):
    si = connect(vcsim)
    dvs, vm, src, _, idle = setup(si)
    member = vim.dvs.HostMember.ConfigSpec(operation="remove", host=idle)
    spec = vim.DistributedVirtualSwitch.ConfigSpec(
        host=[member], configVersion=dvs.config.configVersion
    )
    wait(dvs.ReconfigureDvs_Task(spec))
    key = nic(vm).backing.port.portKey
    vms_on_src = set(src.vm)

    fault = failure(vm.MigrateVM_Task(host=idle, priority=PRIORITY))

    assert isinstance(fault, vim.fault.CannotAccessNetwork)
    assert idle.name in fault.msg and dvs.name in fault.msg
    (failed,) = events(si, vm, *MOVE_EVENTS)
    assert isinstance(failed, vim.event.VmFailedMigrateEvent)
    assert (failed.host.host, failed.destHost.host) == (src, idle)
    assert isinstance(failed.reason, vim.fault.CannotAccessNetwork)
    assert failed.fullFormattedMessage.startswith(
        f"Cannot migrate {vm.name} from {src.name} to {idle.name}: "
    )
    assert vm.runtime.host == src
    assert set(src.vm) == vms_on_src and vm not in idle.vm
    assert port(dvs, key).proxyHost == src


def test_migration_to_a_host_in_maintenance_or_missing_fails(vcsim):
    si = connect(vcsim)
    _, vm, src, _, idle = setup(si)
    wait(idle.EnterMaintenanceMode_Task(timeout=0))

    fault = failure(vm.MigrateVM_Task(host=idle, priority=PRIORITY))
    assert isinstance(fault, vim.fault.InvalidHostState)
    assert "maintenance" in fault.msg

    missing = vim.HostSystem("host-424242", si._stub)
    fault = failure(vm.MigrateVM_Task(host=missing, priority=PRIORITY))
    assert isinstance(fault, vmodl.fault.ManagedObjectNotFound)
    assert "host-424242" in fault.msg

    failed = events(si, vm, *MOVE_EVENTS)
    assert [type(e) for e in failed] == [vim.event.VmFailedMigrateEvent] * 2
    assert vm.runtime.host == src


def test_relocate_to_another_host_is_a_vmotion_without_one_it_is_stock(vcsim):
    si = connect(vcsim)
    _, vm, src, dest, _ = setup(si)
    (cluster,) = inventory(si, vim.ClusterComputeResource)

    wait(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=dest)))
    assert vm.runtime.host == dest and vm in dest.vm and vm not in src.vm
    kinds = [type(e) for e in events(si, vm, *MOVE_EVENTS)]
    assert kinds == [vim.event.VmBeingHotMigratedEvent, vim.event.VmMigratedEvent]

    wait(vm.RelocateVM_Task(vim.vm.RelocateSpec(pool=cluster.resourcePool)))
    assert vm.runtime.host == dest
    assert len(events(si, vm, *MOVE_EVENTS)) == 2

    wait(vm.MigrateVM_Task(pool=cluster.resourcePool, priority=PRIORITY))
    assert vm.runtime.host != dest, "a pool alone lets the simulator pick another host"
    assert len(events(si, vm, *MOVE_EVENTS)) == 4


def test_several_sessions_can_wait_for_the_same_migration(vcsim):
    sessions = [connect(vcsim) for _ in range(3)]
    _, vm, _, dest, _ = setup(sessions[0])
    task = vm.MigrateVM_Task(host=dest, priority=PRIORITY)
    results = {}

    def wait_in(index, si):
        results[index] = wait(vim.Task(task._moId, si._stub)) is None

    threads = [threading.Thread(target=wait_in, args=(i, si)) for i, si in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {0: True, 1: True, 2: True}
    assert vm.runtime.host == dest
