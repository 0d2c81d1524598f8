"""The plan ``ovsphere prepare`` applies: port group repairs and port edits.

Pure: given a snapshot (inventory, the port group's ports, the OVS VMs) it
returns what to change and why; the vSphere layer applies it.  Planning
twice on the result of applying a plan yields nothing to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ovsphere.logic.port_policy import (
    PORTGROUP_DEFAULT,
    differences,
    edit_for,
    held_port,
    trunk_port,
)
from ovsphere.model import (
    Binding,
    OvsVm,
    Port,
    PortEdit,
    Portgroup,
    PortSetting,
    VlanMode,
    VlanRange,
)


@dataclass(frozen=True)
class PortgroupPlan:
    """Create the port group, or repair the listed fields (empty: nothing)."""

    create: bool
    num_ports: int
    changes: tuple[str, ...] = ()

    @property
    def needed(self) -> bool:
        return self.create or bool(self.changes)


def plan_portgroup(pg: Portgroup | None, *, min_ports: int, used_ports: int) -> PortgroupPlan:
    # Leave a quarter spare so new VM NICs bind without waiting for a grow.
    wanted = max(min_ports, used_ports + max(8, used_ports // 4))
    if pg is None:
        return PortgroupPlan(create=True, num_ports=wanted, changes=("create",))
    changes = []
    if pg.binding is not Binding.STATIC:
        changes.append(f"binding {pg.binding.value or 'unset'} -> static (earlyBinding)")
    if pg.num_ports < wanted:
        changes.append(f"ports {pg.num_ports} -> {wanted}")
    if not pg.auto_expand:
        changes.append("auto-expand off -> on")
    o = pg.overrides
    if not (o.vlan and o.security and o.block):
        changes.append("allow VLAN, security and block overrides per port")
    if pg.reset_at_disconnect:
        changes.append("keep port settings when a VM disconnects")
    if pg.teaming.uplinks:
        changes.append(f"uplinks {', '.join(pg.teaming.uplinks)} -> none")
    changes.extend(f"default port: {d}" for d in differences(pg.default, PORTGROUP_DEFAULT))
    return PortgroupPlan(create=False, num_ports=max(wanted, pg.num_ports), changes=tuple(changes))


@dataclass(frozen=True)
class PortPlan:
    edits: tuple[PortEdit, ...] = ()
    #: VM ports left blocked because they have no usable VLAN yet
    waiting: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def vm_vlan_counts(ports: Sequence[Port], ovs_ports: set[str]) -> Counter[int]:
    """How many VM ports use each access VLAN (OVS VM trunk ports excluded)."""
    return Counter(
        p.setting.vlan_id
        for p in ports
        if p.key not in ovs_ports
        and p.connectee is not None
        and p.setting.vlan_mode is VlanMode.ACCESS
        and p.setting.vlan_id
    )


def plan_ports(
    ports: Sequence[Port], ovs_vms: Sequence[OvsVm], trunk: Sequence[VlanRange]
) -> PortPlan:
    """Edits that give every port on the port group its shape (see port_policy)."""
    ovs_ports = {n.backing.port_key for o in ovs_vms for n in o.trunk_nics if n.backing.port_key}
    counts = vm_vlan_counts(ports, ovs_ports)
    edits, waiting = [], []
    for port in sorted(ports, key=lambda p: p.key):
        if port.key in ovs_ports:
            desired = trunk_port(trunk)
            why = "OVS VM trunk"
        elif port.connectee is None:
            desired = held_port()
            why = "free port"
        else:
            vlan = port.setting.vlan_id if port.setting.vlan_mode is VlanMode.ACCESS else None
            if vlan and counts[vlan] == 1:
                # The VLAN is this port's alone: keep it, make sure security is tight.
                desired = PortSetting(
                    blocked=False, promiscuous=False, forged_transmits=False, mac_changes=False
                )
                why = f"VM port, VLAN {vlan}"
            else:
                desired = held_port()
                waiting.append(port.key)
                why = "VM port without a VLAN of its own"
        edit = edit_for(port, desired, why)
        if edit is not None:
            edits.append(edit)
    return PortPlan(edits=tuple(edits), waiting=tuple(waiting))
