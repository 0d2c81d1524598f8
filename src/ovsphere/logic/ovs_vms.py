"""Which VMs are OVS VMs (transport nodes), and which of their vNICs are trunks.

An operator marks OVS VMs by name (a regular expression, ``^ovs-`` by
default), by a custom attribute (``ovsphere.role = ovs-vm``), or both: a VM
matching either is an OVS VM.  Its trunk vNICs are those on the isolated port
group; its other vNICs (transport, management) are not ovsphere's business.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ovsphere.model import Inventory, Nic, OvsVm, Portgroup, VirtualMachine


@dataclass(frozen=True)
class OvsVmRule:
    name_pattern: str | None = r"^ovs-"
    attribute: str | None = "ovsphere.role"
    attribute_value: str = "ovs-vm"

    def matches(self, vm: VirtualMachine) -> bool:
        if self.name_pattern and re.search(self.name_pattern, vm.name):
            return True
        return (
            bool(self.attribute) and vm.attributes.get(self.attribute or "") == self.attribute_value
        )


def nics_on(vm: VirtualMachine, pg: Portgroup) -> tuple[Nic, ...]:
    return tuple(
        n
        for n in vm.nics
        if n.backing.kind == "dvport"
        and n.backing.switch_uuid == pg.switch_uuid
        and n.backing.portgroup_key == pg.key
    )


def find_ovs_vms(inventory: Inventory, pgs: Sequence[Portgroup], rule: OvsVmRule) -> list[OvsVm]:
    """Every OVS VM, with its trunk vNICs: those on any of the isolated ``pgs``.

    One OVS VM has one trunk vNIC per vDS it serves (see ARCHITECTURE.md).
    """
    return [
        OvsVm(
            vm=vm.moref,
            name=vm.name,
            host=vm.host,
            power_state=vm.power_state,
            trunk_nics=tuple(n for pg in pgs for n in nics_on(vm, pg)),
        )
        for vm in inventory.vms
        if rule.matches(vm)
    ]
