"""``ovsphere lab demo``: the whole story on a running lab, step by step, with figures.

Two networks; VMs on three ESX hosts attached through ovsphere (one by
command with a fixed address, one by its custom attribute, the others by
command); each VM takes its address by DHCP from OVN; pings across hosts,
isolation between the networks, a KVM guest on the same network as the
vSphere VMs; then a vMotion with a 10 ms ping running through it, and how
many pings it lost.  Everything goes through the lab's running manager
(``ovsphere manager run``, started by ``lab up``); the demo only writes
intent and watches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyVmomi import vim

from ovsphere.errors import PreconditionError
from ovsphere.lab.manager import lab_settings
from ovsphere.lab.manual import LabControl
from ovsphere.lab.pings import ping_through
from ovsphere.lab.vmotion import migrate, wait_for_move
from ovsphere.manager import operations
from ovsphere.manager.desired import BOUND, INTENT_ATTRIBUTE
from ovsphere.ovn.connection import NbClient
from ovsphere.vsphere.connection import Connection


def set_attribute(conn: Connection, vm_moref: str, name: str, value: str) -> None:
    """Set a VM's custom attribute (defining it first), as an operator would in vCenter."""

    def run(si: Any) -> None:
        cfm = si.content.customFieldsManager
        field = next((f for f in cfm.field or () if f.name == name), None)
        if field is None:
            field = cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine)
        cfm.SetField(entity=vim.VirtualMachine(vm_moref, si._stub), key=field.key, value=value)

    conn.call(f"set custom attribute {name} of {vm_moref}", run)


def wait_bound(
    vc: Connection, nb: NbClient, lab: LabControl, vms: list[str], timeout: float
) -> float:
    settings = lab_settings(lab.state)
    start = time.monotonic()

    def check() -> tuple[bool, str]:
        rows = [r for r in operations.status(vc, nb, settings) if r.vm in vms]
        waiting = [f"{r.vm}: {r.state} {r.reason}" for r in rows if r.state != BOUND]
        return (len(rows) == len(vms) and not waiting), "; ".join(waiting)

    operations.wait_for(check, timeout=timeout)
    return time.monotonic() - start


def run_demo(name: str, say: Callable[[str], None]) -> None:
    lab = LabControl(name)
    settings = lab_settings(lab.state)
    inv = lab.inventory()
    hosts = {h.moref: h.name for h in inv.hosts}
    vms = {v.name: v for v in inv.vms if v.name in lab.layout.vm_names}
    # Chosen by where the topology put them, so a second run picks the same VMs.
    by_host: dict[str, list[str]] = {}
    for t in lab.layout.topology.vms:
        if t.name in vms:
            by_host.setdefault(t.host, []).append(t.name)
    if len(by_host) < 2 or sum(len(x) for x in by_host.values()) < 3:
        raise PreconditionError(
            "the demo needs at least 3 VMs on 2 or more hosts",
            fix="use the default topology (`ovsphere lab up`)",
        )
    # One VM per host on "web", the next one on "db".
    web = [names[0] for names in by_host.values()]
    db = next(n for names in by_host.values() for n in names[1:])
    with (
        Connection(lab.connection().endpoint, verify_tls=False) as vc,
        NbClient(settings.require_nb()) as nb,
    ):
        for net, cidr in (("web", "10.10.0.0/24"), ("db", "10.20.0.0/24")):
            operations.create_network(nb, net, cidr=cidr, transport_mtu=settings.transport_mtu)
            say(f"$ ovsphere network create {net} --cidr {cidr}")
        fixed = "10.10.0.10"
        first, *others = web
        declarative = others[-1]
        for vm in web:
            if vm == declarative:
                set_attribute(vc, vms[vm].moref, INTENT_ATTRIBUTE, "web")
                say(f"{vm}: custom attribute {INTENT_ATTRIBUTE}=web (declarative attach)")
            elif vm == first:
                port = operations.attach(vc, nb, settings, vm, "web", ip=fixed).port
                say(f"$ ovsphere attach {vm} web --ip {fixed}   -> VLAN {port.vlan}")
            else:
                port = operations.attach(vc, nb, settings, vm, "web").port
                say(f"$ ovsphere attach {vm} web   -> VLAN {port.vlan}")
        port = operations.attach(vc, nb, settings, db, "db").port
        say(f"$ ovsphere attach {db} db   -> VLAN {port.vlan}")
        seconds = wait_bound(vc, nb, lab, [*web, db], timeout=60)
        say(
            f"the manager bound {len(web) + 1} NICs (dvPort VLANs, patch pairs on the OVS VMs, "
            f"requested-chassis) in {seconds:.1f} s"
        )
        for r in operations.status(vc, nb, settings):
            if r.network:
                say(
                    f"  {r.vm:6} {r.mac} VLAN {r.vlan:<4} {r.host} via {r.chassis}: "
                    f"{r.network} {r.state}"
                )
        ips = {vm: lab.dhcp(vm) for vm in [*web, db]}
        say(
            "DHCP (OVN's native DHCP, MTU fitted to the tunnel): "
            + ", ".join(f"{vm} {ip}" for vm, ip in ips.items())
        )
        kvm_vm = lab.layout.kvm_vm_names[0] if lab.layout.kvm_vm_names else None
        if kvm_vm:
            lab.attach_kvm(kvm_vm, "web")
            ips[kvm_vm] = lab.dhcp(kvm_vm)
            say(f"KVM guest {kvm_vm} joins web through OVN directly: {ips[kvm_vm]}")
        for dst in [*others, *([kvm_vm] if kvm_vm else [])]:
            got = lab.ping(first, ips[dst], count=3)
            say(f"$ ping {first} -> {dst} ({ips[dst]}): {got}/3 answered")
            if got == 0:
                raise PreconditionError(
                    f"{first} cannot reach {dst}", fix=f"read {lab.state.dir}/manager.log"
                )
        lab.run(db, "ip", "addr", "add", "10.10.0.99/24", "dev", "eth0", check=False)
        got = lab.ping(db, ips[first], count=3, wait=0.5)
        say(
            f"$ ping {db} (db) -> {first} (web, {ips[first]}): {got}/3 answered: "
            + ("isolated" if got == 0 else "NOT ISOLATED")
        )
        now = hosts.get(lab.vm_host(first) or "", "")
        target = next(h for h in by_host if h != now)
        peer = others[0]

        def move() -> None:
            migrate(vc, first, target)
            wait_for_move(lab.state.dir, first, target)

        pings = ping_through(lab, peer, ips[first], move)
        say(
            f"$ ovsphere lab vmotion {first} {target}, with {peer} pinging {first} every "
            f"10 ms: {pings.lost} of {pings.sent} pings lost ({pings.lost * 10} ms)"
        )
