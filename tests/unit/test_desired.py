"""The manager's planning rules, and a model checker for its isolation invariant."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovsphere.logic.port_policy import held_port, vm_port
from ovsphere.logic.vlan import Owner, VlanPool, allocate
from ovsphere.manager.desired import (
    BOUND,
    DETACHING,
    ERROR,
    INTENT_ATTRIBUTE,
    MIGRATING,
    PENDING,
    UNATTACHED,
    IntentError,
    ManagedSwitch,
    Move,
    NodeSettings,
    Plan,
    Snapshot,
    apply_edits,
    parse_intent,
    passes,
    plan,
)
from ovsphere.model import Inventory, LogicalPort, Network, Port
from ovsphere.testing.builders import SWITCH_UUID, isolated_pg, ports_for, world
from ovsphere.transport.model import Chassis

pytestmark = pytest.mark.unit

SWITCH = ManagedSwitch(SWITCH_UUID, "dvs", isolated_pg().key, "ovsphere-isolated")
CHASSIS = {
    f"ovs-esx{i}": Chassis(f"ovs-esx{i}", "tcp:sb:6642", "geneve", f"10.0.0.{i}") for i in (1, 2, 3)
}


def held(ports: list[Port]) -> list[Port]:
    """Ports as a fresh isolated port group has them: VM ports blocked, no VLAN."""
    return [p if p.key.startswith("1") else replace(p, setting=held_port()) for p in ports]


def snapshot(
    inv: Inventory | None = None,
    *,
    ports: list[Port] | None = None,
    lports: tuple[LogicalPort, ...] = (),
    networks: tuple[str, ...] = ("web", "db"),
    migrations: dict[str, Move] | None = None,
    active: dict[str, frozenset[str]] | None = None,
) -> Snapshot:
    inv = inv or world()
    return Snapshot(
        inventory=inv,
        switches=(SWITCH,),
        ports={SWITCH_UUID: tuple(ports if ports is not None else held(ports_for(inv)))},
        networks={n: Network(n) for n in networks},
        lports=lports,
        nodes=NodeSettings(CHASSIS),
        migrations=migrations or {},
        active=active,
    )


def lport(
    inv: Inventory, vm_name: str, vlan: int, network: str = "web", **kw: object
) -> LogicalPort:
    vm = next(v for v in inv.vms if v.name == vm_name)
    nic = vm.nics[0]
    return LogicalPort(
        name=f"vm-{vm.instance_uuid}-{nic.key}",
        network=network,
        mac=nic.mac,
        vds=SWITCH_UUID,
        vlan=vlan,
        vm=vm.instance_uuid,
        nic=nic.key,
        vm_name=vm.name,
        **kw,  # type: ignore[arg-type]
    )


def status_of(p: Plan, vm: str) -> tuple[str, str]:
    s = next(s for s in p.status if s.vm == vm)
    return s.state, s.reason


# --- parse_intent ---------------------------------------------------------------------------


def test_intent_forms():
    assert parse_intent("") == {}
    assert parse_intent(" web ") == {None: "web"}
    assert parse_intent("nic-4000=web, nic-4001=db") == {4000: "web", 4001: "db"}


@pytest.mark.parametrize(
    "bad", ["4000=web", "nic-x=web", "nic-4000=", "nic-4000=a b", "nic-1=a,nic-1=b"]
)
def test_bad_intent_names_the_problem(bad):
    with pytest.raises(IntentError, match=INTENT_ATTRIBUTE):
        parse_intent(bad)


# --- attach ---------------------------------------------------------------------------------


def test_nothing_attached_blocks_vm_ports_and_keeps_trunks():
    inv = world()
    p = plan(snapshot(inv))
    assert p.empty
    assert {s.state for s in p.status} == {UNATTACHED}
    assert set(p.nodes) == set(CHASSIS) and all(not n.patches for n in p.nodes.values())
    assert all(len(n.trunks) == 1 for n in p.nodes.values())


def test_unblocked_vm_port_without_owner_is_blocked_and_its_vlan_busy():
    inv = world()
    ports = ports_for(inv)  # VM ports unblocked on 101.. as someone left them
    p = plan(snapshot(inv, ports=ports))
    edits = p.port_edits[SWITCH_UUID]
    assert {e.key for e in edits} == {"211", "221", "231"}
    assert all(e.setting == held_port() for e in edits)
    assert p.busy[SWITCH_UUID] == {101, 102, 103}


def test_bound_port_gets_its_vlan_pin_and_patch():
    inv = world()
    lp = lport(inv, "app-2-1", 7)
    p = plan(snapshot(inv, lports=(lp,)))
    (edit,) = p.port_edits[SWITCH_UUID]
    assert edit.key == "221" and edit.setting == vm_port(7)
    (pin,) = p.pins
    assert (pin.port, pin.chassis, pin.activation) == (lp.name, ("ovs-esx2",), None)
    (patch,) = p.nodes["ovs-esx2"].patches
    assert (patch.vlan, patch.iface_id, patch.mac) == (7, lp.name, lp.mac)
    assert not p.nodes["ovs-esx1"].patches
    assert status_of(p, "app-2-1")[0] == PENDING


def test_converged_port_is_bound_once_ovn_says_up():
    inv = world()
    lp = lport(inv, "app-2-1", 7, requested_chassis=("ovs-esx2",))
    first = plan(snapshot(inv, lports=(lp,)))
    ports = apply_edits({SWITCH_UUID: held(ports_for(inv))}, first.port_edits)
    p = plan(snapshot(inv, ports=list(ports[SWITCH_UUID]), lports=(lp,)))
    assert p.empty
    assert status_of(p, "app-2-1") == (PENDING, "not yet up in OVN")
    p = plan(snapshot(inv, ports=list(ports[SWITCH_UUID]), lports=(replace(lp, up=True),)))
    assert status_of(p, "app-2-1")[0] == BOUND


def test_attribute_asks_for_a_port_and_a_missing_network_is_an_error():
    inv = world()
    vms = tuple(
        replace(v, attributes={INTENT_ATTRIBUTE: "web"}) if v.name == "app-1-1" else
        replace(v, attributes={INTENT_ATTRIBUTE: "nope"}) if v.name == "app-3-1" else v
        for v in inv.vms
    )
    inv = replace(inv, vms=vms)
    p = plan(snapshot(inv))
    (need,) = p.needs
    assert (need.vm_name, need.network, need.vds) == ("app-1-1", "web", SWITCH_UUID)
    assert status_of(p, "app-1-1") == (PENDING, "waiting for a VLAN")
    state, reason = status_of(p, "app-3-1")
    assert state == ERROR and "'nope'" in reason and "network create" in reason


def test_bad_attribute_is_an_error_on_the_vm():
    inv = world()
    inv = replace(inv, vms=tuple(
        replace(v, attributes={INTENT_ATTRIBUTE: "nic-=x"}) if v.name == "app-1-1" else v
        for v in inv.vms))
    state, reason = status_of(plan(snapshot(inv)), "app-1-1")
    assert state == ERROR and "nic-KEY=NETWORK" in reason


def test_attribute_removed_releases_its_port_but_a_command_port_stays():
    inv = world()
    by_attr = lport(inv, "app-1-1", 5, intent="attribute")
    by_cmd = lport(inv, "app-2-1", 6, intent="command")
    ports = [replace(p, setting=vm_port({"211": 5, "221": 6}[p.key])) if p.key in ("211", "221")
             else p for p in held(ports_for(inv))]
    p = plan(snapshot(inv, ports=ports, lports=(by_attr, by_cmd)))
    assert [e.key for e in p.port_edits[SWITCH_UUID]] == ["211"]  # blocked first
    assert p.releases == ()  # VLAN 5 still passes on 211
    assert status_of(p, "app-1-1")[0] == DETACHING
    after = apply_edits({SWITCH_UUID: ports}, p.port_edits)
    p2 = plan(snapshot(inv, ports=list(after[SWITCH_UUID]), lports=(by_attr, by_cmd)))
    assert p2.releases == (by_attr.name,)
    assert not any(x.iface_id == by_attr.name for n in p2.nodes.values() for x in n.patches)


def test_vm_deleted_blocks_its_old_port_then_releases():
    inv = world()
    lp = lport(inv, "app-3-1", 9)
    ports = [replace(p, setting=vm_port(9)) if p.key == "231" else p for p in held(ports_for(inv))]
    gone = replace(inv, vms=tuple(v for v in inv.vms if v.name != "app-3-1"))
    ports = [replace(p, connectee=None) if p.key == "231" else p for p in ports]
    p = plan(snapshot(gone, ports=ports, lports=(lp,)))
    assert [(e.key, e.setting.blocked) for e in p.port_edits[SWITCH_UUID]] == [("231", True)]
    assert p.releases == ()
    assert next(s for s in p.status if s.vm == "app-3-1").state == DETACHING


def test_detach_mark_and_network_deletion():
    inv = world()
    lp = lport(inv, "app-1-1", 5, detach=True)
    p = plan(snapshot(inv, lports=(lp,)))  # port already blocked (held)
    assert p.releases == (lp.name,)
    snap = snapshot(inv, lports=(lport(inv, "app-2-1", 6),))
    snap = replace(snap, networks={"web": Network("web", deleting=True)})
    p = plan(snap)
    assert p.releases == ("vm-uuid-vm-21-4000",) and p.delete_networks == ()
    p = plan(replace(snap, lports=()))
    assert p.delete_networks == ("web",)


# --- vMotion --------------------------------------------------------------------------------


MOVE = {"vm-11": Move("host-1", "host-3")}


def test_migration_prearms_destination_then_finalizes():
    inv = world()
    lp = lport(inv, "app-1-1", 5, requested_chassis=("ovs-esx1",))
    ports = [replace(p, setting=vm_port(5)) if p.key == "211" else p for p in held(ports_for(inv))]
    p = plan(snapshot(inv, ports=ports, lports=(lp,), migrations=MOVE))
    (pin,) = p.pins
    assert pin.chassis == ("ovs-esx1", "ovs-esx3") and pin.activation == "rarp"
    assert [x.vlan for x in p.nodes["ovs-esx1"].patches] == [5]
    assert [x.vlan for x in p.nodes["ovs-esx3"].patches] == [5]
    armed = replace(lp, requested_chassis=pin.chassis, activation="rarp", up=True)
    assert status_of(plan(snapshot(inv, ports=ports, lports=(armed,),
                                   migrations=MOVE)), "app-1-1")[0] == MIGRATING
    # The host changed (event or not); without the SB to tell, only the destination remains.
    moved = replace(inv, vms=tuple(replace(v, host="host-3") if v.moref == "vm-11" else v
                                   for v in inv.vms))
    p = plan(snapshot(moved, ports=ports, lports=(armed,), migrations=MOVE))
    (pin,) = p.pins
    assert pin.chassis == ("ovs-esx3",) and pin.activation is None
    assert not p.nodes["ovs-esx1"].patches and len(p.nodes["ovs-esx3"].patches) == 1
    assert p.settled == ("vm-11",)
    # Failed migration: the in-flight entry goes, the source is all that stays.
    p = plan(snapshot(inv, ports=ports, lports=(armed,)))
    assert p.pins[0].chassis == ("ovs-esx1",) and not p.nodes["ovs-esx3"].patches


def test_migration_stays_armed_until_the_destination_sees_the_vm():
    inv = world()
    ports = [replace(p, setting=vm_port(5)) if p.key == "211" else p for p in held(ports_for(inv))]
    armed = lport(inv, "app-1-1", 5, requested_chassis=("ovs-esx1", "ovs-esx3"),
                  activation="rarp", up=True)
    moved = replace(inv, vms=tuple(replace(v, host="host-3") if v.moref == "vm-11" else v
                                   for v in inv.vms))
    # vCenter shows the VM on host-3, but OVN has it active on the source only: stay armed.
    waiting = {armed.name: frozenset({"ovs-esx1"})}
    p = plan(snapshot(moved, ports=ports, lports=(armed,), migrations=MOVE, active=waiting))
    assert not p.pins and not p.settled
    assert len(p.nodes["ovs-esx1"].patches) == 1 and len(p.nodes["ovs-esx3"].patches) == 1
    state, reason = status_of(p, "app-1-1")
    assert state == MIGRATING and "RARP" in reason
    # The destination's ovn-controller saw the RARP: finalize there.
    seen = {armed.name: frozenset({"ovs-esx1", "ovs-esx3"})}
    p = plan(snapshot(moved, ports=ports, lports=(armed,), migrations=MOVE, active=seen))
    assert p.pins[0].chassis == ("ovs-esx3",) and p.settled == ("vm-11",)
    assert not p.nodes["ovs-esx1"].patches
    # A VM that turns up on a third host (an HA restart) ends its move there.
    elsewhere = replace(inv, vms=tuple(replace(v, host="host-2") if v.moref == "vm-11" else v
                                       for v in inv.vms))
    p = plan(snapshot(elsewhere, ports=ports, lports=(armed,), migrations=MOVE, active=waiting))
    assert p.pins[0].chassis == ("ovs-esx2",) and p.settled == ("vm-11",)


def test_host_without_ovs_vm_or_configuration_is_reported():
    inv = world()
    inv = replace(inv, vms=tuple(v for v in inv.vms if v.name != "ovs-esx2"))
    snap = snapshot(inv, lports=(lport(inv, "app-2-1", 6), lport(inv, "app-3-1", 7)))
    snap = replace(snap, nodes=NodeSettings({k: v for k, v in CHASSIS.items() if k != "ovs-esx3"}))
    p = plan(snap)
    state, reason = status_of(p, "app-2-1")
    assert state == ERROR and "esx2 has no OVS VM" in reason
    state, reason = status_of(p, "app-3-1")
    assert state == ERROR and "transport_nodes.ovs-esx3" in reason
    assert "ovs-esx3" not in p.nodes


# --- A model checker: crash anywhere, the invariant holds and the state converges -----------


def _step(snap: Snapshot, phases: int) -> Snapshot:
    """Apply the first ``phases`` phases of a pass, in the reconciler's order."""
    p = plan(snap)
    lports = list(snap.lports)
    ports = {k: tuple(v) for k, v in snap.ports.items()}
    if phases >= 1 and p.needs:
        held_by = {lp.vlan: Owner(lp.vm, lp.nic) for lp in lports}
        pool = VlanPool("dvs")
        busy = {v: Owner("busy", v) for v in p.busy.get(SWITCH_UUID, ())}
        got = allocate(pool, {**busy, **held_by}, [n.owner for n in p.needs])
        for n in p.needs:
            lports.append(LogicalPort(f"vm-{n.owner.vm}-{n.owner.nic}", n.network, n.mac,
                                      n.vds, got[n.owner], n.owner.vm, n.owner.nic, n.vm_name,
                                      intent="attribute"))
        snap = replace(snap, lports=tuple(lports))
        p = plan(snap)
    if phases >= 2:
        ports = apply_edits(ports, p.port_edits)
        snap = replace(snap, ports=ports)
        p = plan(snap)
    if phases >= 3:
        pins = {x.port: x for x in p.pins}
        lports = [replace(lp, requested_chassis=pins[lp.name].chassis,
                          activation=pins[lp.name].activation) if lp.name in pins else lp
                  for lp in snap.lports]
        snap = replace(snap, lports=tuple(lports))
    if phases >= 4:
        gone = set(plan(snap).releases)
        snap = replace(snap, lports=tuple(lp for lp in snap.lports if lp.name not in gone))
    return snap


def _invariant(snap: Snapshot) -> None:
    passing: dict[int, str] = {}
    for port in snap.ports[SWITCH_UUID]:
        vlan = passes(port.setting)
        if vlan is None:
            continue
        assert vlan not in passing, f"VLAN {vlan} passes on ports {passing[vlan]} and {port.key}"
        passing[vlan] = port.key
    held_vlans = [lp.vlan for lp in snap.lports]
    assert len(held_vlans) == len(set(held_vlans)), "a VLAN held twice"
    owner_of = {lp.vlan: lp for lp in snap.lports}
    by_key = {(n.backing.port_key): (v, n) for v in snap.inventory.vms for n in v.nics}
    for vlan, key in passing.items():
        if key.startswith("1"):
            continue
        lp = owner_of.get(vlan)
        assert lp is not None, f"port {key} passes VLAN {vlan} that no logical port holds"
        if key not in by_key:
            continue  # a deleted VM's port: still held by its logical port, so no stranger's
        vm, nic = by_key[key]
        assert (lp.vm, lp.nic) == (vm.instance_uuid, nic.key), f"VLAN {vlan} on a stranger's port"


_events = st.lists(
    st.tuples(
        st.sampled_from(["attach", "detach", "delete", "migrate", "done"]),
        st.integers(0, 5),  # which VM
        st.integers(0, 4),  # phases of the pass that ran before the crash
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_events)
def test_no_vlan_ever_passes_on_two_ports(events):
    inv = world(hosts=3, vms_per_host=2)
    snap = snapshot(inv)
    apps = [v for v in inv.vms if v.name.startswith("app-")]
    for kind, which, phases in events:
        vm = apps[which]
        vms = {v.moref: v for v in snap.inventory.vms}
        if kind == "attach" and vm.moref in vms:
            vms[vm.moref] = replace(vms[vm.moref], attributes={INTENT_ATTRIBUTE: "web"})
        elif kind == "detach" and vm.moref in vms:
            vms[vm.moref] = replace(vms[vm.moref], attributes={})
        elif kind == "delete" and vm.moref in vms:
            del vms[vm.moref]
            key = vm.nics[0].backing.port_key
            snap = replace(snap, ports={SWITCH_UUID: tuple(
                replace(p, connectee=None) if p.key == key else p
                for p in snap.ports[SWITCH_UUID])})
        elif kind == "migrate" and vm.moref in vms and vms[vm.moref].host != "host-3":
            move = Move(vms[vm.moref].host or "", "host-3")
            snap = replace(snap, migrations={**snap.migrations, vm.moref: move})
        elif kind == "done" and vm.moref in snap.migrations and vm.moref in vms:
            vms[vm.moref] = replace(vms[vm.moref], host=snap.migrations[vm.moref].dst)
            snap = replace(snap, migrations={k: v for k, v in snap.migrations.items()
                                             if k != vm.moref})
        snap = replace(snap, inventory=replace(snap.inventory, vms=tuple(vms.values())))
        snap = _step(snap, phases)
        _invariant(snap)
    for _ in range(4):  # the manager keeps running: everything converges
        snap = _step(snap, 4)
        _invariant(snap)
    final = plan(snap)
    assert final.empty, final
    wanted = {v.instance_uuid for v in snap.inventory.vms if v.attributes.get(INTENT_ATTRIBUTE)}
    assert {lp.vm for lp in snap.lports} == wanted
    for lp in snap.lports:
        vm = next(v for v in snap.inventory.vms if v.instance_uuid == lp.vm)
        move = snap.migrations.get(vm.moref)
        hosts = [move.src, move.dst] if move else [vm.host]
        assert lp.requested_chassis == tuple(f"ovs-esx{h[-1]}" for h in hosts)
