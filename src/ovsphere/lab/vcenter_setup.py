"""Give the simulated vCenter the inventory a topology names.

The simulator starts with a generic model (hosts ``DC0_C0_H0``..., one vDS
``DVS0``); this renames and reshapes it through the vSphere API, then does
what an operator would: ``prepare`` the isolated port group on every vDS,
deploy one OVS VM per host (trunk vNIC per vDS, transport and management
vNICs on the vDS's ordinary port group), ``prepare`` again so their ports
become trunks, and create the topology's VMs.  Idempotent: what exists with
the right name is kept.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pyVmomi import vim

from ovsphere.errors import NotFoundError
from ovsphere.lab.layout import Layout
from ovsphere.lab.topology import Topology
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.model import Inventory, Portgroup, Switch, VlanRange
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.prepare import prepare
from ovsphere.vsphere.tasks import wait_for_tasks

TRUNK = (VlanRange(0, 4094),)
RULE = OvsVmRule(name_pattern=r"^ovs-", attribute=None)
T = TypeVar("T")


def _rename_hosts(conn: Connection, inv: Inventory, topo: Topology) -> None:
    hosts = sorted(inv.hosts, key=lambda h: h.name)
    if len(hosts) < len(topo.hosts):
        raise NotFoundError(f"the simulator has {len(hosts)} hosts, the topology {len(topo.hosts)}")

    def run(si: Any) -> None:
        tasks = [
            vim.HostSystem(h.moref, si._stub).Rename_Task(newName=name)
            for h, name in zip(hosts, topo.hosts, strict=False)
            if h.name != name
        ]
        wait_for_tasks(si, tasks, "rename hosts")

    conn.call("rename hosts", run)


def _shape_switches(conn: Connection, topo: Topology) -> Inventory:
    inv = read_inventory(conn)
    by_name = {h.name: h.moref for h in inv.hosts}

    def run(si: Any) -> None:
        first = topo.switches[0]
        existing = {s.name: s for s in inv.switches}
        if first.name not in existing and "DVS0" in existing:
            ref = vim.DistributedVirtualSwitch(existing["DVS0"].moref, si._stub)
            wait_for_tasks(si, [ref.Rename_Task(newName=first.name)], "rename DVS0")
            existing[first.name] = existing.pop("DVS0")
        for sw in topo.switches:
            want = {by_name[h] for h in topo.members(sw)}
            if sw.name not in existing:
                dc = vim.Datacenter(inv.datacenters[0].moref, si._stub)
                create = vim.DistributedVirtualSwitch.CreateSpec(
                    configSpec=vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(
                        name=sw.name,
                        uplinkPortPolicy=vim.DistributedVirtualSwitch.NameArrayUplinkPortPolicy(
                            uplinkPortName=["uplink1"]
                        ),
                        host=[
                            vim.dvs.HostMember.ConfigSpec(
                                operation="add", host=vim.HostSystem(h, si._stub)
                            )
                            for h in sorted(want)
                        ],
                    )
                )
                wait_for_tasks(
                    si, [dc.networkFolder.CreateDVS_Task(create)], f"create vDS {sw.name}"
                )
                continue
            have = set(existing[sw.name].member_hosts)
            ops = [("remove", h) for h in sorted(have - want)] + [
                ("add", h) for h in sorted(want - have)
            ]
            if ops:
                ref = vim.DistributedVirtualSwitch(existing[sw.name].moref, si._stub)
                spec = vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(
                    configVersion=ref.config.configVersion,
                    host=[
                        vim.dvs.HostMember.ConfigSpec(
                            operation=op, host=vim.HostSystem(h, si._stub)
                        )
                        for op, h in ops
                    ],
                )
                wait_for_tasks(si, [ref.ReconfigureDvs_Task(spec)], f"members of {sw.name}")

    conn.call("shape the vDS", run)
    return read_inventory(conn)


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise NotFoundError(
            f"the simulator has no {what} after setting it up",
            fix="read the simulator log in the lab's state directory",
        )
    return value


def _ordinary_portgroup(inv: Inventory, switch: Switch, isolated: str) -> Portgroup | None:
    """A port group of the switch for the OVS VMs' transport and management vNICs."""
    return next(
        (
            p
            for p in inv.portgroups
            if p.switch_uuid == switch.uuid and not p.uplink and p.name != isolated
        ),
        None,
    )


def build_inventory(conn: Connection, layout: Layout) -> Inventory:
    topo = layout.topology
    _rename_hosts(conn, read_inventory(conn), topo)
    inv = _shape_switches(conn, topo)
    for sw in topo.switches:
        prepare(conn, dvs=sw.name, portgroup=sw.portgroup, rule=RULE, trunk=TRUNK, min_ports=64)
    inv = read_inventory(conn)
    switches = {
        sw.name: _found(inv.switch_named(sw.name), f"vDS {sw.name}") for sw in topo.switches
    }
    isolated = {
        sw.name: _found(
            inv.portgroup_named(switches[sw.name], sw.portgroup),
            f"port group {sw.portgroup} on {sw.name}",
        )
        for sw in topo.switches
    }
    hosts = {h.name: h.moref for h in inv.hosts}
    names = {v.name for v in inv.vms}
    first = topo.switches[0]
    ordinary = _ordinary_portgroup(inv, switches[first.name], first.portgroup)
    for host in topo.hosts:
        name = layout.ovs_vm(host)
        if name in names:
            continue
        trunks = [NicSpec(isolated[sw.name]) for sw in topo.switches if host in topo.members(sw)]
        extra = [NicSpec(ordinary), NicSpec(ordinary)] if ordinary else []
        create_vm(conn, inv, name, hosts[host], trunks[:1] + extra + trunks[1:])
    for sw in topo.switches:
        prepare(conn, dvs=sw.name, portgroup=sw.portgroup, rule=RULE, trunk=TRUNK, min_ports=64)
    for vm in topo.vms:
        if vm.name in names:
            continue
        nics = [NicSpec(isolated[topo.switch_of(n).name], n.mac) for n in vm.nics]
        create_vm(conn, inv, vm.name, hosts[vm.host], nics)
    return read_inventory(conn)
