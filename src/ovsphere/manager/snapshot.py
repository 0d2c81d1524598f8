"""One consistent picture of everything the plan needs, read from vCenter and OVN.

:func:`read_snapshot` reads the vSphere inventory, the ports of every
isolated port group (one ``FetchDVPorts`` per vDS, by port group key), and
ovsphere's networks and logical ports from the NB replica; the caller adds
what the vSphere watch knows that state does not (vMotions announced but not
done), where the SB has each port active, and the transport nodes' last
errors.  A caller that knows vCenter did not change since its last read (a round
that wrote only the NB) passes that read's inventory and ports instead of reading again.
:func:`managed_switches` says which vDS are ovsphere's: each that
carries a port group named like the ``portgroup`` setting (only the ``dvs``
one, when that is set), or those the ``isolated`` setting names with their
own port group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ovsphere.config import Settings
from ovsphere.errors import NotFoundError
from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.logic.vlan import VlanPool
from ovsphere.manager.desired import ManagedSwitch, Move, NodeSettings, Snapshot
from ovsphere.model import Inventory, Port
from ovsphere.ovn import owners
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.networks import read_networks
from ovsphere.ovn.ports import read_ports
from ovsphere.transport.model import GENEVE_OVERHEAD, VXLAN_OVERHEAD, Chassis
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.ports import PortQuery, fetch_ports


def managed_switches(inv: Inventory, settings: Settings) -> tuple[ManagedSwitch, ...]:
    out = []
    for sw in inv.switches:
        if settings.dvs and sw.name != settings.dvs:
            continue
        if settings.isolated and sw.name not in settings.isolated:
            continue
        pg = inv.portgroup_named(sw, settings.isolated.get(sw.name, settings.portgroup))
        if pg is not None:
            out.append(ManagedSwitch(sw.uuid, sw.name, pg.key, pg.name))
    if settings.dvs and not out:
        raise NotFoundError(
            f"vDS {settings.dvs} has no port group {settings.portgroup}",
            fix="run `ovsphere prepare` to create it, or check the dvs and portgroup settings",
        )
    return tuple(out)


def rule_of(settings: Settings) -> OvsVmRule:
    m = settings.ovs_vm
    return OvsVmRule(m.name_pattern, m.attribute, m.attribute_value)


def node_settings(settings: Settings) -> NodeSettings:
    chassis = {
        name: Chassis(
            system_id=node.system_id or name,
            ovn_remote=settings.sb or "",
            encap_type=node.encap_type or settings.encap_type,
            encap_ip=node.encap_ip,
            bridge_mappings=tuple(sorted(node.bridge_mappings.items())),
        )
        for name, node in settings.transport_nodes.items()
    }
    return NodeSettings(
        chassis=chassis,
        trunk=settings.trunk,
        transport_interface=settings.transport_interface,
        tunnel_overhead=GENEVE_OVERHEAD if settings.encap_type == "geneve" else VXLAN_OVERHEAD,
    )


def pools(switches: tuple[ManagedSwitch, ...], settings: Settings) -> dict[str, VlanPool]:
    return {s.uuid: VlanPool(s.name, settings.reserved_vlans) for s in switches}


def node_errors(nb: NbClient) -> dict[str, str]:
    """What the active manager last found wrong on each transport node (NB_Global)."""
    with nb.connection.lock:
        rows = list(nb.api.tables["NB_Global"].rows.values())
    ids = dict(rows[0].external_ids) if rows else {}
    return {
        k.removeprefix(owners.NODE_PREFIX): v
        for k, v in ids.items()
        if k.startswith(owners.NODE_PREFIX) and v
    }


def read_snapshot(
    conn: Connection,
    nb: NbClient,
    settings: Settings,
    *,
    migrations: Mapping[str, Move] | None = None,
    errors: Mapping[str, str] | None = None,
    inventory: Inventory | None = None,
    ports: Mapping[str, Sequence[Port]] | None = None,
    active: Mapping[str, frozenset[str]] | None = None,
) -> Snapshot:
    """``inventory`` and ``ports`` (vDS uuid -> its isolated port group's ports), when given,
    are used instead of reading vCenter again: each read costs seconds with thousands of VMs
    and ports, and a round that only wrote the NB changed neither."""
    inv = inventory if inventory is not None else read_inventory(conn)
    switches = managed_switches(inv, settings)
    morefs = {s.uuid: s.moref for s in inv.switches}
    if ports is None or any(s.uuid not in ports for s in switches):
        ports = {
            s.uuid: tuple(fetch_ports(conn, morefs[s.uuid], PortQuery(portgroups=[s.portgroup])))
            for s in switches
        }
    with nb.connection.lock:
        networks = {n.name: n for n in read_networks(nb)}
        lports = tuple(read_ports(nb))
    return Snapshot(
        inventory=inv,
        switches=switches,
        ports=ports,
        networks=networks,
        lports=lports,
        nodes=node_settings(settings),
        migrations=dict(migrations or {}),
        rule=rule_of(settings),
        node_errors=dict(errors if errors is not None else node_errors(nb)),
        active=active,
    )


def moves_of(found: Mapping[str, tuple[str | None, str | None]], inv: Inventory) -> dict[str, Move]:
    """vMotions under way (:func:`~ovsphere.vsphere.nics.migrations_in_progress`) as moves."""
    hosts = {vm.moref: vm.host for vm in inv.vms}
    out = {}
    for vm, (src, dst) in found.items():
        src = src or hosts.get(vm)
        if src and dst and src != dst:
            out[vm] = Move(src, dst)
    return out
