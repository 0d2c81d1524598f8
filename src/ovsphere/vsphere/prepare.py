"""``ovsphere prepare`` and the shared read of the isolated port group's state.

:func:`read_state` takes one consistent-enough snapshot (inventory, then the
port group's ports) that ``prepare``, ``check`` and ``inventory`` all judge.
:func:`prepare` creates or repairs the port group, then re-reads and shapes
every port on it (see :mod:`ovsphere.logic.port_policy`) in batched tasks.
:func:`assign_vlans` gives VM ports their access VLANs, the manager's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ovsphere.errors import NotFoundError, PreconditionError
from ovsphere.logic.ovs_vms import OvsVmRule, find_ovs_vms, nics_on
from ovsphere.logic.plan import PortPlan, plan_portgroup, plan_ports
from ovsphere.logic.port_policy import differences, vm_port
from ovsphere.model import Inventory, OvsVm, Port, PortEdit, Portgroup, Switch, VlanRange
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.portgroup import create_portgroup, repair_portgroup
from ovsphere.vsphere.ports import PortQuery, fetch_ports, reconfigure_ports


@dataclass(frozen=True)
class State:
    inventory: Inventory
    switch: Switch
    portgroup: Portgroup | None
    ports: tuple[Port, ...]
    ovs_vms: tuple[OvsVm, ...]


def choose_switch(inventory: Inventory, name: str | None) -> Switch:
    names = ", ".join(s.name for s in inventory.switches) or "none"
    if name is None:
        if len(inventory.switches) == 1:
            return inventory.switches[0]
        raise NotFoundError(
            f"{len(inventory.switches)} vDS in vCenter ({names})",
            fix="name one with --dvs or OVSPHERE_DVS",
        )
    switch = inventory.switch_named(name)
    if switch is None:
        raise NotFoundError(
            f"vCenter has no vDS named {name!r} (have: {names})", fix="pass --dvs with one of them"
        )
    return switch


def read_state(conn: Connection, dvs: str | None, portgroup: str, rule: OvsVmRule) -> State:
    inventory = read_inventory(conn)
    switch = choose_switch(inventory, dvs)
    pg = inventory.portgroup_named(switch, portgroup)
    ports: tuple[Port, ...] = ()
    if pg is not None:
        ports = tuple(fetch_ports(conn, switch.moref, PortQuery(portgroups=[pg.key])))
    ovs_vms = find_ovs_vms(inventory, [pg] if pg else [], rule)
    return State(inventory, switch, pg, ports, tuple(ovs_vms))


@dataclass(frozen=True)
class PrepareReport:
    switch: str
    portgroup: str
    created: bool
    portgroup_changes: tuple[str, ...]
    port_edits: tuple[PortEdit, ...]
    tasks: int
    waiting: tuple[str, ...]


def prepare(
    conn: Connection,
    *,
    dvs: str | None,
    portgroup: str,
    rule: OvsVmRule,
    trunk: Sequence[VlanRange],
    min_ports: int,
    remove_uplinks: bool = False,
) -> PrepareReport:
    state = read_state(conn, dvs, portgroup, rule)
    pg = state.portgroup
    if pg is not None and pg.uplink:
        raise PreconditionError(
            f"{pg.name} is the uplink port group of {state.switch.name}",
            fix="choose another --portgroup",
        )
    if pg is not None and pg.teaming.uplinks and not remove_uplinks:
        raise PreconditionError(
            f"port group {pg.name} teams uplinks {', '.join(pg.teaming.uplinks)}: it may carry "
            "production traffic, and ovsphere will not cut it off on its own",
            fix="move the uplinks to 'unused' in vCenter, choose another --portgroup, or pass "
            "--remove-uplinks",
        )
    used = sum(len(nics_on(vm, pg)) for vm in state.inventory.vms) if pg else 0
    pg_plan = plan_portgroup(pg, min_ports=min_ports, used_ports=used)
    if pg_plan.create:
        create_portgroup(conn, state.switch.moref, portgroup, pg_plan.num_ports)
    elif pg is not None and pg_plan.changes:
        repair_portgroup(conn, pg, pg_plan.num_ports)
    if pg_plan.needed:
        state = read_state(conn, state.switch.name, portgroup, rule)
    plan: PortPlan = plan_ports(state.ports, state.ovs_vms, trunk)
    tasks = reconfigure_ports(conn, state.switch.moref, plan.edits)
    return PrepareReport(
        switch=state.switch.name,
        portgroup=portgroup,
        created=pg_plan.create,
        portgroup_changes=() if pg_plan.create else pg_plan.changes,
        port_edits=plan.edits,
        tasks=tasks,
        waiting=plan.waiting,
    )


def assign_vlans(conn: Connection, switch: Switch, vlans: Mapping[str, int]) -> int:
    """Give each port (by key) its access VLAN, unblocked; return the task count.

    Ports already so configured are left alone; each edit carries the port's
    configVersion as read here.
    """
    if not vlans:
        return 0
    ports = {p.key: p for p in fetch_ports(conn, switch.moref, PortQuery(keys=list(vlans)))}
    missing = sorted(set(vlans) - set(ports))
    if missing:
        raise NotFoundError(
            f"switch {switch.name} has no ports {', '.join(missing[:10])}",
            fix="re-read the inventory; the VM may have moved to another port",
        )
    edits = []
    for key, vlan in sorted(vlans.items()):
        desired = vm_port(vlan)
        if differences(ports[key].setting, desired):
            edits.append(
                PortEdit(
                    key=key,
                    setting=desired,
                    config_version=ports[key].config_version or None,
                    reason=f"VLAN {vlan}",
                )
            )
    return reconfigure_ports(conn, switch.moref, edits)
