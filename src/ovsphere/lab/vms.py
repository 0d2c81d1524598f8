"""Creating VMs in (simulated) vCenter, as an operator's deployment would.

The lab and the demo use these to put OVS VMs and application VMs onto the
isolated port group through the same API a real deployment uses
(``CreateVM_Task`` on a chosen host, NICs backed by dvPorts), so that what
ovsphere then reads is exactly what vCenter made of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from ovsphere.errors import NotFoundError
from ovsphere.model import Inventory, Portgroup
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.tasks import wait_for_tasks


@dataclass(frozen=True)
class NicSpec:
    portgroup: Portgroup
    mac: str | None = None  # None: vCenter generates one


def _nic_change(spec: NicSpec, index: int) -> Any:
    nic = vim.vm.device.VirtualVmxnet3()
    nic.key = -(100 + index)  # negative: a new device, vCenter assigns the key
    nic.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
        port=vim.dvs.PortConnection(
            switchUuid=spec.portgroup.switch_uuid, portgroupKey=spec.portgroup.key
        )
    )
    nic.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        connected=True, startConnected=True, allowGuestControl=False
    )
    if spec.mac:
        nic.addressType = "manual"
        nic.macAddress = spec.mac
    else:
        nic.addressType = "generated"
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)


def create_vm(
    conn: Connection,
    inventory: Inventory,
    name: str,
    host: str,
    nics: Sequence[NicSpec],
    *,
    power_on: bool = True,
) -> str:
    """Create (and power on) a VM on ``host``; return its moref id."""
    h = inventory.host(host)
    if h is None:
        raise NotFoundError(f"no host {host} in the inventory", fix="re-read the inventory")

    def run(si: Any) -> str:
        host_ref: Any = vim.HostSystem(h.moref, si._stub)
        dc = vim.Datacenter(h.datacenter, si._stub)
        datastore = host_ref.datastore[0].name if host_ref.datastore else "datastore"
        config = vim.vm.ConfigSpec(
            name=name,
            guestId="otherLinux64Guest",
            numCPUs=1,
            memoryMB=512,
            files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
            deviceChange=[_nic_change(n, i) for i, n in enumerate(nics)],
        )
        task = dc.vmFolder.CreateVM_Task(
            config=config, pool=host_ref.parent.resourcePool, host=host_ref
        )
        (vm,) = wait_for_tasks(si, [task], f"create VM {name}")
        if power_on:
            wait_for_tasks(si, [vm.PowerOnVM_Task()], f"power on VM {name}")
        return str(vm._moId)

    return conn.call(f"create VM {name}", run)


def set_attribute(conn: Connection, vm: str, name: str, value: str) -> None:
    """Set a custom attribute on a VM, defining the attribute if needed."""

    def run(si: Any) -> None:
        cfm = si.content.customFieldsManager
        if not any(f.name == name for f in cfm.field or ()):
            cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine)
        cfm.SetField(
            entity=vim.VirtualMachine(vm, si._stub),
            key=next(f.key for f in cfm.field if f.name == name),
            value=value,
        )

    conn.call(f"set attribute {name} on {vm}", run)
