"""What every VM NIC, dvPort, logical port and OVS VM should be: the manager's plan.

Pure: :func:`plan` takes a :class:`Snapshot` (vCenter's inventory and the
isolated port groups' ports, OVN's networks and ovsphere's logical ports, the
migrations in flight, how each transport node is reached) and returns a
:class:`Plan`; the reconciler applies it and plans again.  Planning on the
result of applying a plan gives nothing new to do.

The rules that keep VMs isolated, whatever order steps run in and wherever a
process dies between them:

- A VLAN belongs to a NIC from the moment its logical port is written (the
  port *is* the ledger entry, see :mod:`ovsphere.ovn.ports`) until that port
  is deleted, and a port is deleted (released) only once no dvPort of its vDS
  passes traffic on its VLAN.  So two NICs never carry one VLAN unblocked.
- A dvPort is unblocked with a VLAN only for a NIC whose logical port holds
  that VLAN; every other port of the isolated port group (a NIC waiting, a
  NIC being detached, a deleted VM's port) is blocked.
- VLANs found unblocked on a port without an owner (left by hand, or by a
  switch deleted under ovsphere) are busy: never handed out until blocked.
- An OVS VM carries a patch for a NIC only while the NIC's VM runs on its
  host, or is moving to it (pre-armed vMotion).

Attach order is therefore: logical port (VLAN held) -> dvPort VLAN, unblocked
-> patch on the host's OVS VM and ``requested-chassis``.  Detach runs it
backwards: dvPort blocked and patch removed -> logical port deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ovsphere.logic.ovs_vms import OvsVmRule, find_ovs_vms
from ovsphere.logic.port_policy import edit_for, held_port, trunk_port, vm_port
from ovsphere.logic.vlan import Owner
from ovsphere.model import (
    Inventory,
    LogicalPort,
    Network,
    Nic,
    OvsVm,
    Port,
    PortEdit,
    PortSetting,
    VirtualMachine,
    VlanMode,
    VlanRange,
)
from ovsphere.transport.model import GENEVE_OVERHEAD, Chassis, NodeDesired, Patch, Trunk

#: The custom attribute that attaches a VM's NICs without a command.
INTENT_ATTRIBUTE = "ovsphere.network"

# NIC states, as `ovsphere status` shows them.
PENDING = "pending"
BOUND = "bound"
MIGRATING = "migrating"
DETACHING = "detaching"
UNATTACHED = "unattached"
ERROR = "error"


class IntentError(ValueError):
    """A malformed ``ovsphere.network`` attribute value."""


def parse_intent(value: str) -> dict[int | None, str]:
    """``web`` -> every NIC on ``web``; ``nic-4000=web,nic-4001=db`` -> per NIC key.

    ``None`` keys the VM-wide network.  An empty value attaches nothing.
    """
    value = value.strip()
    if not value:
        return {}
    if "=" not in value:
        _check_name(value, value)
        return {None: value}
    out: dict[int | None, str] = {}
    for item in value.split(","):
        nic, sep, net = (part.strip() for part in item.partition("="))
        key = nic.removeprefix("nic-")
        if not sep or not key.isdigit() or key == nic:
            raise IntentError(
                f"{INTENT_ATTRIBUTE}={value!r}: {item.strip()!r} is not nic-KEY=NETWORK "
                "(KEY is the vNIC's device key, e.g. nic-4000=web)"
            )
        _check_name(net, value)
        if int(key) in out:
            raise IntentError(f"{INTENT_ATTRIBUTE}={value!r}: nic-{key} is named twice")
        out[int(key)] = net
    return out


def _check_name(net: str, value: str) -> None:
    if not net or any(c.isspace() or c in ",=" for c in net):
        raise IntentError(f"{INTENT_ATTRIBUTE}={value!r}: {net!r} is not a network name")


# --- Inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A vMotion in flight: the VM runs on host ``src`` until it runs on ``dst``."""

    src: str
    dst: str


@dataclass(frozen=True)
class ManagedSwitch:
    """A vDS with an isolated port group: its VM NICs are ovsphere's to bind."""

    uuid: str
    name: str
    portgroup: str  # the isolated port group's key
    portgroup_name: str = ""


@dataclass(frozen=True)
class NodeSettings:
    """How transport nodes should look, from the configuration."""

    chassis: Mapping[str, Chassis]  # OVS VM name -> its ovn-controller settings
    trunk: tuple[VlanRange, ...] = (VlanRange(0, 4094),)
    transport_interface: str | None = None
    tunnel_overhead: int = GENEVE_OVERHEAD


@dataclass(frozen=True)
class Snapshot:
    inventory: Inventory
    switches: tuple[ManagedSwitch, ...]
    ports: Mapping[str, Sequence[Port]]  # vDS uuid -> the isolated port group's ports
    networks: Mapping[str, Network]
    lports: Sequence[LogicalPort]
    nodes: NodeSettings
    migrations: Mapping[str, Move] = field(default_factory=dict)  # VM moref -> its vMotion
    rule: OvsVmRule = field(default_factory=OvsVmRule)
    node_errors: Mapping[str, str] = field(default_factory=dict)  # OVS VM name -> last error
    #: logical port -> the chassis it is active on (from the SB); None: the SB is not read,
    #: and a vMotion is over as soon as vCenter shows the VM on its destination
    active: Mapping[str, frozenset[str]] | None = None


# --- Outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """A NIC whose VM's attribute names a network, and that has no logical port yet."""

    owner: Owner
    vds: str
    network: str
    mac: str
    vm_name: str


@dataclass(frozen=True)
class Pin:
    port: str
    chassis: tuple[str, ...]
    activation: str | None  # "rarp" while a vMotion is pre-armed


@dataclass(frozen=True)
class NicStatus:
    vm: str
    vm_uuid: str
    nic: int
    mac: str
    vds: str  # name
    vlan: int | None
    host: str  # name
    chassis: str | None  # the OVS VM of the host (and of the destination while migrating)
    network: str | None
    state: str
    reason: str = ""
    port: str | None = None  # the logical port
    ip: str | None = None


@dataclass(frozen=True)
class Plan:
    needs: tuple[Need, ...] = ()
    releases: tuple[str, ...] = ()  # logical ports whose VLAN no dvPort passes any more
    pins: tuple[Pin, ...] = ()
    port_edits: Mapping[str, tuple[PortEdit, ...]] = field(default_factory=dict)  # per vDS
    nodes: Mapping[str, NodeDesired] = field(default_factory=dict)  # per OVS VM name
    delete_networks: tuple[str, ...] = ()  # marked for deletion, no port left
    busy: Mapping[str, frozenset[int]] = field(default_factory=dict)  # per vDS: orphan VLANs
    status: tuple[NicStatus, ...] = ()
    settled: tuple[str, ...] = ()  # VMs whose vMotion is over: forget it

    @property
    def empty(self) -> bool:
        return not (
            self.needs
            or self.releases
            or self.pins
            or any(self.port_edits.values())
            or self.delete_networks
        )


# --- Planning -------------------------------------------------------------------------------


@dataclass
class _Live:
    vm: VirtualMachine
    nic: Nic
    switch: ManagedSwitch


def plan(snap: Snapshot) -> Plan:
    inv = snap.inventory
    switches = {s.uuid: s for s in snap.switches}
    pgs = [p for p in inv.portgroups if any(p.key == s.portgroup for s in snap.switches)]
    ovs_vms = find_ovs_vms(inv, pgs, snap.rule)
    ovs_morefs = {o.vm for o in ovs_vms}
    node_of_host = nodes_by_host(ovs_vms)
    host_names = {h.moref: h.name for h in inv.hosts}
    lports = {Owner(lp.vm, lp.nic): lp for lp in snap.lports}

    live: dict[Owner, _Live] = {}
    intents: dict[Owner, str] = {}
    errors: dict[Owner, str] = {}
    for vm in sorted(inv.vms, key=lambda v: v.name):
        if vm.moref in ovs_morefs:
            continue
        try:
            wanted = parse_intent(vm.attributes.get(INTENT_ATTRIBUTE, ""))
        except IntentError as exc:
            wanted = {}
            for nic in vm.nics:
                errors[Owner(vm.instance_uuid, nic.key)] = str(exc)
        for nic in vm.nics:
            sw = _isolated_switch(nic, switches)
            if sw is None:
                continue
            owner = Owner(vm.instance_uuid, nic.key)
            live[owner] = _Live(vm, nic, sw)
            net = wanted.get(nic.key, wanted.get(None))
            if net is not None:
                intents[owner] = net

    active: dict[Owner, LogicalPort] = {}
    releasing: list[LogicalPort] = []
    for owner, lp in lports.items():
        if _is_active(lp, live.get(owner), intents.get(owner), snap.networks):
            active[owner] = lp
        else:
            releasing.append(lp)

    needs = []
    for owner, net in intents.items():
        if owner in lports:
            continue
        network = snap.networks.get(net)
        if network is None or network.deleting:
            errors.setdefault(
                owner,
                f"{INTENT_ATTRIBUTE} names network {net!r}, which does not exist"
                " (create it with `ovsphere network create`)",
            )
            continue
        item = live[owner]
        needs.append(Need(owner, item.switch.uuid, net, item.nic.mac, item.vm.name))

    moves, settled = _moves(snap, active, node_of_host)
    port_edits = _port_edits(snap, ovs_vms, active, live)
    busy = _busy(snap)
    releases = tuple(
        sorted(lp.name for lp in releasing if _released(lp, snap.ports.get(lp.vds, ())))
    )
    pins, patches = _pins_and_patches(snap, active, live, node_of_host, moves)
    nodes = _node_desired(snap, ovs_vms, patches)
    delete_networks = tuple(
        sorted(
            n.name
            for n in snap.networks.values()
            if n.deleting and not any(lp.network == n.name for lp in snap.lports)
        )
    )
    status = _status(
        snap,
        live,
        active,
        lports,
        intents,
        errors,
        port_edits,
        pins,
        node_of_host,
        host_names,
        moves,
    )
    return Plan(
        needs=tuple(sorted(needs, key=lambda n: (n.vm_name, n.owner.nic))),
        releases=releases,
        pins=pins,
        port_edits=port_edits,
        nodes=nodes,
        delete_networks=delete_networks,
        busy=busy,
        status=status,
        settled=settled,
    )


def _isolated_switch(nic: Nic, switches: Mapping[str, ManagedSwitch]) -> ManagedSwitch | None:
    b = nic.backing
    sw = switches.get(b.switch_uuid or "")
    if b.kind != "dvport" or sw is None or b.portgroup_key != sw.portgroup:
        return None
    return sw


def nodes_by_host(ovs_vms: Sequence[OvsVm]) -> dict[str, OvsVm]:
    """Host moref -> the OVS VM that serves it."""
    # One OVS VM per host; should there be two, the first by name serves (and the check
    # command reports the duplicate).
    out: dict[str, OvsVm] = {}
    for o in sorted(ovs_vms, key=lambda o: o.name):
        if o.host and o.host not in out:
            out[o.host] = o
    return out


def _moves(
    snap: Snapshot, active: Mapping[Owner, LogicalPort], node_of_host: Mapping[str, OvsVm]
) -> tuple[dict[str, Move], tuple[str, ...]]:
    """The vMotions still in flight, and those that are over.

    A move is over once the VM is on its destination *and* every one of its
    ports is active there (the destination's ovn-controller saw the VM's RARP):
    until then both hosts stay armed, since vCenter may show the VM on its
    destination before its frames get there.  A VM found on neither host (an
    HA restart elsewhere, or deleted) ends its move too.
    """
    vms = {vm.moref: vm for vm in snap.inventory.vms}
    ports_of: dict[str, list[LogicalPort]] = {}
    for owner, lp in active.items():
        ports_of.setdefault(owner.vm, []).append(lp)
    moves, settled = {}, []
    for moref, move in sorted(snap.migrations.items()):
        vm = vms.get(moref)
        if vm is None or vm.host not in (move.src, move.dst) or move.src == move.dst:
            settled.append(moref)
        elif vm.host == move.src:
            moves[moref] = move
        elif snap.active is None or move.dst not in node_of_host:
            settled.append(moref)
        else:
            chassis = _system_id(snap, node_of_host[move.dst])
            lps = ports_of.get(vm.instance_uuid, [])
            if all(chassis in snap.active.get(lp.name, ()) for lp in lps):
                settled.append(moref)
            else:
                moves[moref] = move
    return moves, tuple(settled)


def _is_active(
    lp: LogicalPort, live: _Live | None, intent: str | None, networks: Mapping[str, Network]
) -> bool:
    """Does the logical port still stand for a NIC that should be bound?"""
    if live is None or lp.detach or live.switch.uuid != lp.vds:
        return False
    net = networks.get(lp.network)
    if net is None or net.deleting:
        return False
    if lp.intent == "attribute":
        return intent == lp.network
    return True


def _port_edits(
    snap: Snapshot,
    ovs_vms: Sequence[OvsVm],
    active: Mapping[Owner, LogicalPort],
    live: Mapping[Owner, _Live],
) -> dict[str, tuple[PortEdit, ...]]:
    trunk_keys = {n.backing.port_key for o in ovs_vms for n in o.trunk_nics}
    vm_vlans = {
        (item.switch.uuid, item.nic.backing.port_key): active[owner].vlan
        for owner, item in live.items()
        if owner in active and item.nic.backing.port_key
    }
    out: dict[str, tuple[PortEdit, ...]] = {}
    for sw in snap.switches:
        edits = []
        for port in snap.ports.get(sw.uuid, ()):
            vlan = vm_vlans.get((sw.uuid, port.key))
            if port.key in trunk_keys:
                desired, why = trunk_port(snap.nodes.trunk), "OVS VM trunk"
            elif vlan is not None:
                desired, why = vm_port(vlan), f"bound, VLAN {vlan}"
            else:
                desired, why = held_port(), "not bound"
            edit = edit_for(port, desired, why)
            if edit is not None:
                edits.append(edit)
        out[sw.uuid] = tuple(edits)
    return out


def passes(setting: PortSetting) -> int | None:
    """The VLAN a dvPort passes traffic on (None: blocked, or no access VLAN)."""
    if setting.blocked is not False or setting.vlan_mode is not VlanMode.ACCESS:
        return None
    return setting.vlan_id or None


def _busy(snap: Snapshot) -> dict[str, frozenset[int]]:
    held: dict[str, set[int]] = {}
    for lp in snap.lports:
        held.setdefault(lp.vds, set()).add(lp.vlan)
    out = {}
    for sw in snap.switches:
        vlans = {passes(p.setting) for p in snap.ports.get(sw.uuid, ())} - {None}
        out[sw.uuid] = frozenset(v for v in vlans if v is not None) - held.get(sw.uuid, set())
    return out


def _released(lp: LogicalPort, ports: Sequence[Port]) -> bool:
    return not any(passes(p.setting) == lp.vlan for p in ports)


def _pins_and_patches(
    snap: Snapshot,
    active: Mapping[Owner, LogicalPort],
    live: Mapping[Owner, _Live],
    node_of_host: Mapping[str, OvsVm],
    moves: Mapping[str, Move],
) -> tuple[tuple[Pin, ...], dict[str, list[Patch]]]:
    pins = []
    patches: dict[str, list[Patch]] = {}
    for owner, lp in sorted(active.items(), key=lambda kv: kv[1].name):
        item = live[owner]
        if item.vm.host not in node_of_host:
            continue  # the VM's own host has no OVS VM: reported in the status
        hosts = _hosts_of(item.vm, moves)
        nodes = [node_of_host[h] for h in hosts if h in node_of_host]
        chassis = tuple(_system_id(snap, n) for n in nodes)
        activation = "rarp" if len(chassis) > 1 else None
        if (lp.requested_chassis, lp.activation) != (chassis, activation):
            pins.append(Pin(lp.name, chassis, activation))
        for node in nodes:
            patches.setdefault(node.name, []).append(
                Patch(lp.vds, lp.vlan, lp.name, item.nic.mac, item.vm.instance_uuid)
            )
    return tuple(pins), patches


def _system_id(snap: Snapshot, node: OvsVm) -> str:
    """The chassis name OVN knows the OVS VM by (its configured system-id)."""
    chassis = snap.nodes.chassis.get(node.name)
    return chassis.system_id if chassis else node.name


def _hosts_of(vm: VirtualMachine, moves: Mapping[str, Move]) -> list[str]:
    """The VM's host; during a vMotion in flight, its source then its destination."""
    if vm.host is None:
        return []
    move = moves.get(vm.moref)
    return [move.src, move.dst] if move else [vm.host]


def _node_desired(
    snap: Snapshot, ovs_vms: Sequence[OvsVm], patches: Mapping[str, list[Patch]]
) -> dict[str, NodeDesired]:
    managed = {s.uuid for s in snap.switches}
    out = {}
    for o in ovs_vms:
        chassis = snap.nodes.chassis.get(o.name)
        if chassis is None:
            continue
        trunks = tuple(
            Trunk(n.backing.switch_uuid or "", n.mac)
            for n in o.trunk_nics
            if n.backing.switch_uuid in managed
        )
        have = {t.vds_uuid for t in trunks}
        out[o.name] = NodeDesired(
            chassis=chassis,
            trunks=trunks,
            # A VM's patch needs the trunk of its vDS on that OVS VM; without it, the
            # status says so rather than the node refusing the whole plan.
            patches=tuple(p for p in patches.get(o.name, []) if p.vds_uuid in have),
            transport_interface=snap.nodes.transport_interface,
            tunnel_overhead=snap.nodes.tunnel_overhead,
        )
    return out


def _status(
    snap: Snapshot,
    live: Mapping[Owner, _Live],
    active: Mapping[Owner, LogicalPort],
    lports: Mapping[Owner, LogicalPort],
    intents: Mapping[Owner, str],
    errors: Mapping[Owner, str],
    port_edits: Mapping[str, tuple[PortEdit, ...]],
    pins: Sequence[Pin],
    node_of_host: Mapping[str, OvsVm],
    host_names: Mapping[str, str],
    moves: Mapping[str, Move],
) -> tuple[NicStatus, ...]:
    edited = {(vds, e.key) for vds, edits in port_edits.items() for e in edits}
    pinning = {p.port for p in pins}
    out = []
    for owner, item in live.items():
        vm, nic, sw = item.vm, item.nic, item.switch
        lp = lports.get(owner)
        hosts = _hosts_of(vm, moves)
        nodes = [node_of_host.get(h) for h in hosts]
        chassis = ",".join(n.name for n in nodes if n) or None
        reason = errors.get(owner, "")
        if owner in active:
            state = BOUND
            assert lp is not None
            problem = _bound_problem(snap, item, hosts, nodes, host_names)
            if problem:
                state, reason = ERROR, problem
            elif (sw.uuid, nic.backing.port_key) in edited or not nic.backing.port_key:
                state, reason = PENDING, "dvPort not configured yet"
            elif lp.name in pinning:
                state, reason = PENDING, "requested-chassis not set yet"
            elif len(hosts) > 1:
                state = MIGRATING
                dest = host_names.get(hosts[1], hosts[1])
                reason = (
                    f"on {dest}, waiting for its RARP there"
                    if vm.host == hosts[1]
                    else f"to {dest}"
                )
            elif lp.up is not True:
                state, reason = PENDING, "not yet up in OVN"
        elif lp is not None:
            state, reason = DETACHING, reason or "releasing its VLAN"
        elif reason:
            state = ERROR
        elif owner in intents:
            state, reason = PENDING, "waiting for a VLAN"
        else:
            state = UNATTACHED
        out.append(
            NicStatus(
                vm=vm.name,
                vm_uuid=vm.instance_uuid,
                nic=nic.key,
                mac=nic.mac,
                vds=sw.name,
                vlan=lp.vlan if lp else None,
                host=host_names.get(vm.host or "", vm.host or ""),
                chassis=chassis,
                network=lp.network if lp else intents.get(owner),
                state=state,
                reason=reason,
                port=lp.name if lp else None,
                ip=(lp.ip or lp.dynamic_ip) if lp else None,
            )
        )
    # Ports whose NIC is gone (VM deleted, NIC removed) still show until released.
    for owner, lp in lports.items():
        if owner not in live:
            out.append(
                NicStatus(
                    vm=lp.vm_name,
                    vm_uuid=lp.vm,
                    nic=lp.nic,
                    mac=lp.mac,
                    vds=next((s.name for s in snap.switches if s.uuid == lp.vds), lp.vds),
                    vlan=lp.vlan,
                    host="",
                    chassis=None,
                    network=lp.network,
                    state=DETACHING,
                    reason="the NIC is gone from vCenter (or off the isolated port group)",
                    port=lp.name,
                )
            )
    return tuple(sorted(out, key=lambda s: (s.vm, s.nic)))


def _bound_problem(
    snap: Snapshot,
    item: _Live,
    hosts: Sequence[str],
    nodes: Sequence[OvsVm | None],
    host_names: Mapping[str, str],
) -> str:
    if item.vm.host is None:
        return "the VM has no host"
    for host, node in zip(hosts, nodes, strict=True):
        name = host_names.get(host, host)
        if node is None:
            return f"host {name} has no OVS VM (deploy one there: see `ovsphere check`)"
        if node.name not in snap.nodes.chassis:
            return (
                f"OVS VM {node.name} is not a configured transport node "
                f"(add [transport_nodes.{node.name}] to the configuration)"
            )
        if not any(n.backing.switch_uuid == item.switch.uuid for n in node.trunk_nics):
            return (
                f"OVS VM {node.name} has no trunk vNIC on vDS {item.switch.name} "
                f"(add one on port group {item.switch.portgroup_name or item.switch.portgroup})"
            )
        if node.name in snap.node_errors:
            return f"OVS VM {node.name}: {snap.node_errors[node.name]}"
    return ""


def apply_edits(
    ports: Mapping[str, Sequence[Port]], edits: Mapping[str, Sequence[PortEdit]]
) -> dict[str, tuple[Port, ...]]:
    """The ports as they are once ``edits`` are applied (for planning the next step)."""
    out = {}
    for vds, items in ports.items():
        by_key = {e.key: e.setting for e in edits.get(vds, ())}
        out[vds] = tuple(
            replace(p, setting=_merge(p.setting, by_key[p.key])) if p.key in by_key else p
            for p in items
        )
    return out


def _merge(current: PortSetting, desired: PortSetting) -> PortSetting:
    fields = {k: v for k, v in vars(desired).items() if v is not None and v != ()}
    if desired.vlan_mode is not None and desired.vlan_mode is not VlanMode.TRUNK:
        fields["trunk"] = ()
    return replace(current, **fields)
