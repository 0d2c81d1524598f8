"""From what a transport node has to what it should have: the ordered steps.

Pure (no ovsdbapp, no I/O), so every rule is unit-tested with plain values.
:func:`observe` turns the rows read from OVSDB into a :class:`NodeObserved`
(which patch pairs are complete and correct, which bridge serves which vDS);
:func:`plan_steps` compares it with a :class:`NodeDesired` and returns the steps
that :func:`ovsphere.transport.node.apply_node` writes in one transaction, in
this order: deletions (ports, then bridges), repairs, additions, chassis keys.
Planning again on the result of applying a plan gives no steps.

The planner only ever names rows that carry ``ovsphere:owner=ovsphere`` for
change or removal; a row in the way that ovsphere does not own (a port with a
name it needs, a trunk NIC on someone else's bridge) is an error that tells the
operator what to remove.  Values here are immutable: several threads may plan
for several nodes at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ovsphere.transport.errors import TransportError, TrunkNicMissing
from ovsphere.transport.model import (
    CHASSIS_KEYS,
    DATAPATH_TYPE,
    INTEGRATION_BRIDGE,
    OVN_BRIDGE_MAPPINGS,
    OVN_ENCAP_IP,
    OVN_ENCAP_TYPE,
    OVN_REMOTE,
    SYSTEM_ID,
    VDS_KEY,
    VLAN_KEY,
    Action,
    Chassis,
    NodeDesired,
    NodeObserved,
    ObservedBridge,
    ObservedPort,
    Patch,
    normalize_mac,
    patch_names,
    trunk_bridge_index,
    trunk_bridge_name,
)

IFACE_ID = "iface-id"
ATTACHED_MAC = "attached-mac"
VM_UUID = "vm-uuid"


# --- Steps: what apply_node writes, each with the Action it reports ---------------------------


@dataclass(frozen=True)
class DelPort:
    bridge: str
    name: str
    why: str

    def action(self) -> Action:
        return Action("del-port", f"{self.name} from {self.bridge} ({self.why})")


@dataclass(frozen=True)
class DelPatch:
    trunk_bridge: str
    names: tuple[str, str]  # (trunk side, br-int side)
    patch: Patch

    def action(self) -> Action:
        p = self.patch
        return Action(
            "del-patch",
            f"vlan {p.vlan} -> lp {p.iface_id} on vds {p.vds_uuid} "
            f"({self.names[0]} on {self.trunk_bridge}, {self.names[1]} on {INTEGRATION_BRIDGE})",
        )


@dataclass(frozen=True)
class DelBridge:
    name: str
    why: str

    def action(self) -> Action:
        return Action("del-bridge", f"{self.name} ({self.why})")


@dataclass(frozen=True)
class FixBridge:
    name: str
    datapath_type: str
    fail_mode: str  # "" = standalone (the column cleared)

    def action(self) -> Action:
        mode = self.fail_mode or "standalone"
        return Action(
            "fix-bridge", f"{self.name}: datapath_type {self.datapath_type}, fail-mode {mode}"
        )


@dataclass(frozen=True)
class AddBridge:
    name: str
    fail_mode: str  # "" = standalone
    vds_uuid: str | None = None  # set on trunk bridges
    other_config: tuple[tuple[str, str], ...] = ()

    def action(self) -> Action:
        if self.vds_uuid is None:
            return Action(
                "add-bridge",
                f"{self.name} (integration bridge, {DATAPATH_TYPE}, fail-mode {self.fail_mode})",
            )
        return Action("add-bridge", f"{self.name} (trunk bridge of vds {self.vds_uuid})")


@dataclass(frozen=True)
class AddTrunkNic:
    bridge: str
    nic: str
    mac: str
    vds_uuid: str

    def action(self) -> Action:
        return Action(
            "add-trunk-nic", f"{self.nic} ({self.mac}) on {self.bridge} for vds {self.vds_uuid}"
        )


@dataclass(frozen=True)
class AddPatch:
    trunk_bridge: str
    names: tuple[str, str]  # (trunk side, br-int side)
    patch: Patch

    def action(self) -> Action:
        p = self.patch
        return Action(
            "add-patch",
            f"vlan {p.vlan} -> lp {p.iface_id} on vds {p.vds_uuid} "
            f"({self.names[0]} on {self.trunk_bridge} <-> {self.names[1]} on "
            f"{INTEGRATION_BRIDGE})",
        )


@dataclass(frozen=True)
class UpdatePatch:
    port: str  # the br-int side, which carries the binding
    patch: Patch
    was: Patch

    def action(self) -> Action:
        p, w = self.patch, self.was
        changes = [
            f"{what} {old} -> {new}"
            for what, old, new in (
                ("lp", w.iface_id, p.iface_id),
                ("mac", w.mac, p.mac),
                ("vm", w.vm_uuid, p.vm_uuid),
            )
            if old != new
        ]
        return Action(
            "update-patch", f"vlan {p.vlan} on vds {p.vds_uuid} ({self.port}): {', '.join(changes)}"
        )


@dataclass(frozen=True)
class SetChassis:
    set: tuple[tuple[str, str], ...]
    remove: tuple[str, ...] = ()

    def action(self) -> Action:
        parts = [f"{k}={v}" for k, v in self.set] + [f"-{k}" for k in self.remove]
        return Action("set-chassis", ", ".join(parts))


Step = (
    DelPort
    | DelPatch
    | DelBridge
    | FixBridge
    | AddBridge
    | AddTrunkNic
    | AddPatch
    | UpdatePatch
    | SetChassis
)


# --- Observed: rows -> the node's summary ------------------------------------------------------


def chassis_from_keys(keys: dict[str, str]) -> Chassis | None:
    """The chassis the Open_vSwitch external_ids describe; None without a system-id."""
    if not keys.get(SYSTEM_ID):
        return None
    return Chassis(
        system_id=keys[SYSTEM_ID],
        ovn_remote=keys.get(OVN_REMOTE, ""),
        encap_type=keys.get(OVN_ENCAP_TYPE, ""),
        encap_ip=keys.get(OVN_ENCAP_IP, ""),
        bridge_mappings=parse_mappings(keys.get(OVN_BRIDGE_MAPPINGS, "")),
    )


def parse_mappings(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split(","):
        network, _, bridge = item.strip().partition(":")
        if network and bridge:
            pairs.append((network, bridge))
    return tuple(pairs)


def observe(
    *,
    bridges: Iterable[ObservedBridge],
    ports: Iterable[ObservedPort],
    chassis_keys: dict[str, str],
    nics: dict[str, str],
    mtu: dict[str, int],
    errors: dict[str, str] | None = None,
) -> NodeObserved:
    """Summarise a node's rows: its chassis, trunk bridges and complete patch pairs."""
    bridge_list = tuple(sorted(bridges, key=lambda b: b.name))
    port_list = tuple(sorted(ports, key=lambda p: (p.bridge, p.name)))
    trunks: dict[str, str] = {}
    for b in bridge_list:
        if b.owned and b.vds_uuid and trunk_bridge_index(b.name) is not None:
            trunks.setdefault(b.vds_uuid, b.name)
    by_name = {p.name: p for p in port_list}
    patches = [patch for p in port_list if (patch := _valid_pair(p, by_name, trunks)) is not None]
    return NodeObserved(
        chassis=chassis_from_keys(chassis_keys),
        trunks=trunks,
        patches=tuple(patches),
        nics={normalize_mac(m): n for m, n in nics.items()},
        mtu=dict(mtu),
        bridges=bridge_list,
        ports=port_list,
        chassis_keys={k: v for k, v in chassis_keys.items() if k in CHASSIS_KEYS},
        errors=dict(errors or {}),
    )


def _valid_pair(
    inner: ObservedPort, by_name: dict[str, ObservedPort], trunks: dict[str, str]
) -> Patch | None:
    """The Patch an owned br-int side port stands for, if its pair is complete and correct."""
    ids = inner.external_ids
    if not inner.owned or inner.bridge != INTEGRATION_BRIDGE or inner.type != "patch":
        return None
    vds, vlan_text = ids.get(VDS_KEY), ids.get(VLAN_KEY, "")
    if vds is None or not vlan_text.isdigit() or vds not in trunks:
        return None
    vlan = int(vlan_text)
    index = trunk_bridge_index(trunks[vds])
    assert index is not None  # trunks only holds br-trunk<N>
    outer_name, inner_name = patch_names(index, vlan)
    outer = by_name.get(outer_name)
    if (
        inner.name != inner_name
        or inner.peer != outer_name
        or outer is None
        or not outer.owned
        or outer.bridge != trunks[vds]
        or outer.type != "patch"
        or outer.peer != inner_name
        or outer.tag != vlan
        or not all(ids.get(k) for k in (IFACE_ID, ATTACHED_MAC, VM_UUID))
    ):
        return None
    return Patch(vds, vlan, ids[IFACE_ID], ids[ATTACHED_MAC], ids[VM_UUID])


# --- Desired vs observed -> steps ----------------------------------------------------------------


@dataclass
class _Plan:
    observed: NodeObserved
    deletes: list[Step] = field(default_factory=list)
    bridge_deletes: list[Step] = field(default_factory=list)
    repairs: list[Step] = field(default_factory=list)
    adds: list[Step] = field(default_factory=list)
    keep: set[str] = field(default_factory=set)  # owned port names that stay
    gone_bridges: set[str] = field(default_factory=set)

    def steps(self) -> list[Step]:
        return [*self.deletes, *self.bridge_deletes, *self.repairs, *self.adds]


def plan_node(observed: NodeObserved, desired: NodeDesired) -> list[Action]:
    """What :func:`apply_node` would change, as readable actions (empty: nothing)."""
    return [s.action() for s in plan_steps(observed, desired)]


def plan_steps(observed: NodeObserved, desired: NodeDesired) -> list[Step]:
    _check_desired(desired)
    desired = replace(
        desired, patches=tuple(replace(p, mac=normalize_mac(p.mac)) for p in desired.patches)
    )
    plan = _Plan(observed)
    bridges = _plan_bridges(plan, desired)
    _plan_trunk_nics(plan, desired, bridges)
    _plan_patches(plan, desired, bridges)
    _plan_leftover_ports(plan)
    chassis = _plan_chassis(observed, desired)
    return plan.steps() + ([chassis] if chassis else [])


def _check_desired(desired: NodeDesired) -> None:
    seen_vds: dict[str, str] = {}
    seen_mac: dict[str, str] = {}
    for t in desired.trunks:
        mac = normalize_mac(t.mac)
        if t.vds_uuid in seen_vds:
            raise TransportError(
                f"two trunk vNICs ({seen_vds[t.vds_uuid]}, {t.mac}) on vds {t.vds_uuid}",
                fix="give the OVS VM one trunk vNIC per vDS",
            )
        if mac in seen_mac:
            raise TransportError(
                f"trunk vNIC {t.mac} is named for vds {seen_mac[mac]} and vds {t.vds_uuid}",
                fix="each vDS needs its own trunk vNIC on the OVS VM",
            )
        seen_vds[t.vds_uuid], seen_mac[mac] = t.mac, t.vds_uuid
    seen_vlan: dict[tuple[str, int], str] = {}
    for p in desired.patches:
        key = (p.vds_uuid, p.vlan)
        if p.vds_uuid not in seen_vds:
            raise TransportError(
                f"VM NIC {p.iface_id} is on VLAN {p.vlan} of vds {p.vds_uuid}, but the OVS VM "
                "has no trunk vNIC on that vDS",
                fix="add a vNIC on the isolated port group of that vDS to the OVS VM",
            )
        if key in seen_vlan:
            raise TransportError(
                f"VLAN {p.vlan} of vds {p.vds_uuid} is wanted for both {seen_vlan[key]} and "
                f"{p.iface_id}",
                fix="VLANs are unique per vDS: re-run the VLAN allocation",
            )
        seen_vlan[key] = p.iface_id


def _plan_bridges(plan: _Plan, desired: NodeDesired) -> dict[str, str]:
    """Bridges to add, fix and remove; returns vds uuid -> trunk bridge name."""
    obs = plan.observed
    wanted_vds = {t.vds_uuid for t in desired.trunks}
    for ob in obs.bridges:
        if not ob.owned or ob.name == INTEGRATION_BRIDGE:
            continue
        if ob.vds_uuid in wanted_vds and obs.trunks.get(ob.vds_uuid) == ob.name:
            continue
        why = f"vds {ob.vds_uuid} no longer wanted" if ob.vds_uuid else "not wanted"
        plan.bridge_deletes.append(DelBridge(ob.name, why))
        plan.gone_bridges.add(ob.name)

    integration = obs.bridge(INTEGRATION_BRIDGE)
    if integration is None:
        plan.adds.append(
            AddBridge(INTEGRATION_BRIDGE, "secure", other_config=(("disable-in-band", "true"),))
        )
    elif integration.owned and (
        integration.datapath_type != DATAPATH_TYPE or integration.fail_mode != "secure"
    ):
        plan.repairs.append(FixBridge(INTEGRATION_BRIDGE, DATAPATH_TYPE, "secure"))

    names: dict[str, str] = {}
    taken = {b.name for b in obs.bridges}
    next_index = 1
    for t in desired.trunks:
        name = obs.trunks.get(t.vds_uuid)
        if name is not None:
            b = obs.bridge(name)
            assert b is not None
            if b.datapath_type != DATAPATH_TYPE or b.fail_mode not in ("", "standalone"):
                plan.repairs.append(FixBridge(name, DATAPATH_TYPE, ""))
        else:
            while trunk_bridge_name(next_index) in taken:
                next_index += 1
            name = trunk_bridge_name(next_index)
            taken.add(name)
            plan.adds.append(AddBridge(name, "", vds_uuid=t.vds_uuid))
        names[t.vds_uuid] = name
    return names


def _plan_trunk_nics(plan: _Plan, desired: NodeDesired, bridges: dict[str, str]) -> None:
    obs = plan.observed
    for t in desired.trunks:
        mac = normalize_mac(t.mac)
        nic = obs.nics.get(mac)
        if nic is None:
            raise TrunkNicMissing(
                f"the OVS VM has no network interface with MAC {mac}, the trunk vNIC for vds "
                f"{t.vds_uuid}",
                fix="check that the vNIC is connected and its driver loaded in the OVS VM, "
                "or pass its interface name to the NIC probe",
            )
        bridge = bridges[t.vds_uuid]
        port = obs.port(nic)
        if port is not None and port.bridge == bridge:
            plan.keep.add(nic)
            continue
        if port is not None and port.bridge not in plan.gone_bridges:
            if not port.owned:
                raise TransportError(
                    f"trunk vNIC {nic} ({mac}) of vds {t.vds_uuid} is already a port of "
                    f"bridge {port.bridge}, and ovsphere did not put it there",
                    fix=f"remove it there (ovs-vsctl del-port {port.bridge} {nic})",
                )
            plan.deletes.append(DelPort(port.bridge, nic, f"trunk vNIC moves to {bridge}"))
        plan.keep.add(nic)
        plan.adds.append(AddTrunkNic(bridge, nic, mac, t.vds_uuid))


def _plan_patches(plan: _Plan, desired: NodeDesired, bridges: dict[str, str]) -> None:
    obs = plan.observed
    current = {(p.vds_uuid, p.vlan): p for p in obs.patches}
    wanted = {(p.vds_uuid, p.vlan) for p in desired.patches}
    for key, old in sorted(current.items()):
        if key not in wanted and obs.trunks[old.vds_uuid] not in plan.gone_bridges:
            index = trunk_bridge_index(obs.trunks[old.vds_uuid])
            assert index is not None
            names = patch_names(index, old.vlan)
            plan.deletes.append(DelPatch(obs.trunks[old.vds_uuid], names, old))
            plan.keep.update(names)  # handled: not again as leftovers
    for p in desired.patches:
        bridge = bridges[p.vds_uuid]
        index = trunk_bridge_index(bridge)
        assert index is not None
        names = patch_names(index, p.vlan)
        was = current.get((p.vds_uuid, p.vlan))
        if was is not None and obs.trunks.get(p.vds_uuid) == bridge:
            plan.keep.update(names)
            if was != p:
                plan.repairs.append(UpdatePatch(names[1], p, was))
            continue
        for name in names:
            port = obs.port(name)
            if port is None or port.bridge in plan.gone_bridges:
                continue
            if not port.owned:
                raise TransportError(
                    f"port {name} on bridge {port.bridge} is in the way of VLAN {p.vlan} "
                    f"(lp {p.iface_id}) and ovsphere does not manage it",
                    fix=f"remove it (ovs-vsctl del-port {port.bridge} {name})",
                )
            plan.deletes.append(DelPort(port.bridge, name, "incomplete patch pair, re-made"))
        plan.keep.update(names)
        plan.adds.append(AddPatch(bridge, names, p))


def _plan_leftover_ports(plan: _Plan) -> None:
    """Owned ports nothing wants any more (not a bridge's own local port)."""
    for port in plan.observed.ports:
        if (
            port.owned
            and port.name != port.bridge
            and port.name not in plan.keep
            and port.bridge not in plan.gone_bridges
        ):
            plan.deletes.append(DelPort(port.bridge, port.name, "not wanted"))


def _plan_chassis(observed: NodeObserved, desired: NodeDesired) -> SetChassis | None:
    want = desired.chassis.keys()
    have = observed.chassis_keys
    changed = []
    for key, value in want.items():
        if key == OVN_BRIDGE_MAPPINGS:
            same = sorted(parse_mappings(have.get(key, ""))) == sorted(parse_mappings(value))
        else:
            same = have.get(key) == value
        if not same:
            changed.append((key, value))
    remove = (
        (OVN_BRIDGE_MAPPINGS,)
        if OVN_BRIDGE_MAPPINGS not in want and OVN_BRIDGE_MAPPINGS in have
        else ()
    )
    if not changed and not remove:
        return None
    return SetChassis(tuple(changed), remove)
