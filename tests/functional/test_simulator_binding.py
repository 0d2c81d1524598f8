"""Static port binding of VM NICs in the extended simulator, read back through pyVmomi."""

import pytest
from pyVmomi import vim, vmodl

from ovsphere.testing.vcsim import connect, failure, inventory, wait

pytestmark = pytest.mark.functional

NIC = vim.vm.device.VirtualEthernetCard
DVPORT_BACKING = NIC.DistributedVirtualPortBackingInfo


def dvswitch(si):
    (dvs,) = inventory(si, vim.DistributedVirtualSwitch)
    return dvs


def add_portgroup(dvs, name, num_ports, auto_expand=False):
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=name, numPorts=num_ports, autoExpand=auto_expand
    )
    wait(dvs.AddDVPortgroup_Task([spec]))
    (pg,) = [pg for pg in dvs.portgroup if pg.name == name]
    return pg


def nics(vm):
    return [d for d in vm.config.hardware.device if isinstance(d, NIC)]


def nic_spec(dvs, pg, port_key=None):
    backing = DVPORT_BACKING(
        port=vim.dvs.PortConnection(switchUuid=dvs.uuid, portgroupKey=pg.key, portKey=port_key)
    )
    device = vim.vm.device.VirtualVmxnet3(key=-1, backing=backing)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device)


def add_nic(vm, dvs, pg, port_key=None):
    return vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[nic_spec(dvs, pg, port_key)]))


def port(dvs, key):
    (found,) = dvs.FetchDVPorts(vim.dvs.PortCriteria(portKey=[key]))
    return found


def new_nic(vm, before):
    (nic,) = [n for n in nics(vm) if n.key not in {b.key for b in before}]
    return nic


def model_vm(si, index=0):
    return sorted(inventory(si, vim.VirtualMachine), key=lambda vm: vm.name)[index]


def test_model_vms_are_bound_at_startup_with_unique_macs(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    vms = inventory(si, vim.VirtualMachine)
    macs = set()
    for vm in vms:
        (nic,) = nics(vm)
        macs.add(nic.macAddress)
        key = nic.backing.port.portKey
        assert key, f"{vm.name}'s NIC has a port"
        p = port(dvs, key)
        assert p.connectee.connectedEntity == vm
        assert p.connectee.nicKey == str(nic.key)
        pg = next(pg for pg in dvs.portgroup if pg.key == nic.backing.port.portgroupKey)
        assert vm in pg.vm
        assert pg.config.type == "earlyBinding"
    assert len(macs) == len(vms)


def test_added_nic_gets_a_port_and_removing_it_frees_the_port(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-bind", 2)
    vm = model_vm(si)
    before = nics(vm)

    wait(add_nic(vm, dvs, pg))

    nic = new_nic(vm, before)
    key = nic.backing.port.portKey
    assert key in pg.portKeys
    p = port(dvs, key)
    assert (p.connectee.connectedEntity, p.connectee.nicKey) == (vm, str(nic.key))
    assert p.portgroupKey == pg.key
    assert vm in pg.vm

    remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)
    wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[remove])))

    assert port(dvs, key).connectee is None
    assert vm not in pg.vm
    assert len(pg.portKeys) == 2


def test_the_port_a_spec_names_is_used_and_a_taken_port_refused(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-named", 4)
    first, second = model_vm(si, 0), model_vm(si, 1)
    wanted = pg.portKeys[2]

    before = nics(first)
    wait(add_nic(first, dvs, pg, wanted))
    assert new_nic(first, before).backing.port.portKey == wanted

    fault = failure(add_nic(second, dvs, pg, wanted))
    assert isinstance(fault, vim.fault.ResourceInUse)
    assert wanted in fault.msg
    assert port(dvs, wanted).connectee.connectedEntity == first


def test_full_portgroup_gives_a_clear_fault_and_auto_expand_grows_it(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-full", 1)
    first, second = model_vm(si, 0), model_vm(si, 1)
    wait(add_nic(first, dvs, pg))
    before = nics(second)

    fault = failure(add_nic(second, dvs, pg))

    assert isinstance(fault, vim.fault.NotFound)
    assert "port group pg-full has no free port" in fault.msg
    assert nics(second) == before or len(nics(second)) == len(before)

    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        autoExpand=True, configVersion=pg.config.configVersion
    )
    wait(pg.ReconfigureDVPortgroup_Task(spec))
    wait(add_nic(second, dvs, pg))
    assert new_nic(second, before).backing.port.portKey in pg.portKeys
    assert pg.config.numPorts == len(pg.portKeys) > 1
    assert {first, second} <= set(pg.vm)


def test_shrinking_below_connected_ports_is_refused(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-shrink", 3)
    wait(add_nic(model_vm(si, 0), dvs, pg))
    wait(add_nic(model_vm(si, 1), dvs, pg))

    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        numPorts=1, configVersion=pg.config.configVersion
    )
    fault = failure(pg.ReconfigureDVPortgroup_Task(spec))
    assert isinstance(fault, vim.fault.ResourceInUse)
    assert len(pg.portKeys) == 3

    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        numPorts=2, configVersion=pg.config.configVersion
    )
    wait(pg.ReconfigureDVPortgroup_Task(spec))
    connected = dvs.FetchDVPorts(
        vim.dvs.PortCriteria(portgroupKey=[pg.key], inside=True, connected=True)
    )
    assert len(pg.portKeys) == 2 == len(connected)


def test_moving_a_nic_to_another_portgroup_releases_its_port(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    vm = model_vm(si)
    (nic,) = nics(vm)
    old_key, old_pg_key = nic.backing.port.portKey, nic.backing.port.portgroupKey
    pg = add_portgroup(dvs, "pg-target", 2)

    nic.backing = DVPORT_BACKING(
        port=vim.dvs.PortConnection(switchUuid=dvs.uuid, portgroupKey=pg.key)
    )
    edit = vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)
    wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[edit])))

    (nic,) = nics(vm)
    assert nic.backing.port.portgroupKey == pg.key
    assert nic.backing.port.portKey in pg.portKeys
    assert port(dvs, old_key).connectee is None
    old_pg = next(p for p in dvs.portgroup if p.key == old_pg_key)
    assert vm not in old_pg.vm and vm in pg.vm


def test_destroying_a_vm_frees_its_port(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    vm = model_vm(si)
    (nic,) = nics(vm)
    key = nic.backing.port.portKey
    pg = next(p for p in dvs.portgroup if p.key == nic.backing.port.portgroupKey)

    wait(vm.PowerOffVM_Task())
    wait(vm.Destroy_Task())

    assert port(dvs, key).connectee is None
    assert all(v._moId != vm._moId for v in pg.vm)


def test_created_and_cloned_vms_get_their_own_ports_and_macs(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-create", 4)
    (datacenter,) = inventory(si, vim.Datacenter)
    (cluster,) = inventory(si, vim.ClusterComputeResource)
    config = vim.vm.ConfigSpec(
        name="vm-created",
        guestId="otherGuest",
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        deviceChange=[nic_spec(dvs, pg)],
    )

    vm = wait(datacenter.vmFolder.CreateVM_Task(config, cluster.resourcePool))
    (nic,) = nics(vm)
    assert nic.backing.port.portKey in pg.portKeys
    assert port(dvs, nic.backing.port.portKey).connectee.connectedEntity == vm

    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=cluster.resourcePool))
    clone = wait(vm.CloneVM_Task(datacenter.vmFolder, "vm-clone", spec))
    (clone_nic,) = nics(clone)
    assert clone_nic.backing.port.portgroupKey == pg.key
    assert clone_nic.backing.port.portKey not in ("", None, nic.backing.port.portKey)
    assert clone_nic.macAddress != nic.macAddress
    assert port(dvs, clone_nic.backing.port.portKey).connectee.connectedEntity == clone
    assert port(dvs, nic.backing.port.portKey).connectee.connectedEntity == vm
    assert {vm, clone} <= set(pg.vm)


def test_property_collectors_of_other_sessions_see_the_binding(vcsim):
    si, watcher = connect(vcsim), connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-watched", 2)
    pc = watcher.content.propertyCollector.CreatePropertyCollector()
    watched = vim.dvs.DistributedVirtualPortgroup
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=watched(pg._moId, watcher._stub))],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(type=watched, pathSet=["vm", "portKeys"])
        ],
    )
    pc.CreateFilter(spec, partialUpdates=False)
    options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=10)
    version = pc.WaitForUpdatesEx("", options).version
    vm = model_vm(si)

    wait(add_nic(vm, dvs, pg))

    update = pc.WaitForUpdatesEx(version, options)
    assert update is not None, "the change reached the other session's collector"
    changes = {c.name: c.val for f in update.filterSet for o in f.objectSet for c in o.changeSet}
    assert [v._moId for v in changes["vm"]] == [vm._moId]
