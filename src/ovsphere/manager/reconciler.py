"""One reconciliation pass: read everything, plan, apply in the safe order, repeat.

A pass is level-driven: it never asks what changed, only what is (vCenter,
the NB, each OVS VM) and what should be (:func:`ovsphere.manager.desired.plan`).
Each round of a pass applies one plan in the order that keeps VMs isolated at
every instant (see :mod:`.desired`):

1. NICs that need a VLAN get their logical port (the ledger entry), and the
   round ends there: the next round plans with those ports;
2. dvPorts: every VLAN, unblock and block of every vDS in batched
   ``ReconfigureDVPort_Task`` calls shared by all NICs pending at that moment;
3. transport nodes, in parallel: patch pairs added where VMs run (or are
   about to arrive) and removed where they no longer do;
4. ``requested-chassis`` (and ``activation-strategy=rarp`` during a vMotion);
5. logical ports whose VLAN no dvPort passes any more are deleted (VLANs
   released), then networks marked for deletion that have no port left.

Rounds repeat until a plan has nothing left to do.  Every step is idempotent,
so a process killed between any two (``faults.point``) converges when the
next pass runs.  One object's failure (a vDS, a node, a full VLAN pool) is
recorded and the pass goes on with the rest.

Not thread-safe: the service runs one pass at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ovsphere.config import Settings
from ovsphere.errors import OvsphereError
from ovsphere.manager import faults
from ovsphere.manager.allocation import Request, allocate_ports
from ovsphere.manager.desired import Move, NicStatus, Plan, Snapshot, plan
from ovsphere.manager.nodes import NodePool
from ovsphere.manager.snapshot import pools, read_snapshot
from ovsphere.model import Inventory
from ovsphere.ovn import ports as ovn_ports
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.networks import delete_network
from ovsphere.ovn.southbound import SbReader
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.ports import reconfigure_ports

log = logging.getLogger(__name__)

MAX_ROUNDS = 8


@dataclass
class PassReport:
    rounds: int = 0
    allocated: int = 0
    port_edits: int = 0
    tasks: int = 0
    node_changes: int = 0
    pins: int = 0
    released: int = 0
    networks_deleted: int = 0
    errors: list[str] = field(default_factory=list)
    status: tuple[NicStatus, ...] = ()
    settled: set[str] = field(default_factory=set)  # VMs whose vMotion is over
    seconds: float = 0.0

    @property
    def progress(self) -> tuple[int, ...]:
        return (
            self.allocated,
            self.port_edits,
            self.node_changes,
            self.pins,
            self.released,
            self.networks_deleted,
        )

    @property
    def acted(self) -> bool:
        return any(self.progress)


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        vc: Connection,
        nb: NbClient,
        nodes: NodePool,
        *,
        migrations: Callable[[Inventory], Mapping[str, Move]] = lambda _: {},
        sb: SbReader | None = None,
    ) -> None:
        self.settings = settings
        self.vc = vc
        self.nb = nb
        self.nodes = nodes
        self.migrations = migrations
        self.sb = sb
        self.node_errors: dict[str, str] = {}
        self.last_inventory: Inventory | None = None

    def snapshot(self) -> Snapshot:
        inventory = read_inventory(self.vc)
        return read_snapshot(
            self.vc,
            self.nb,
            self.settings,
            migrations=self.migrations(inventory),
            errors=self.node_errors,
            inventory=inventory,
            active=self.sb.active_chassis() if self.sb is not None else None,
        )

    def run_pass(self) -> PassReport:
        report = PassReport()
        start = time.monotonic()
        for _ in range(MAX_ROUNDS):
            report.rounds += 1
            snap = self.snapshot()
            self.last_inventory = snap.inventory
            p = plan(snap)
            report.status = p.status
            report.settled.update(p.settled)
            if p.needs and self._allocate(snap, p, report):
                continue
            before = report.progress
            self._apply(snap, p, report)
            if report.progress == before:
                break  # nothing left to do, or only what failed (recorded in errors)
        report.seconds = time.monotonic() - start
        return report

    def _allocate(self, snap: Snapshot, p: Plan, report: PassReport) -> bool:
        """Logical ports for the NICs that need one, each vDS on its own (one full vDS
        stops only its own NICs)."""
        chassis = snap.nodes.chassis
        # The status already names each NIC's OVS VM(s): pin the port from its first write.
        where = {(s.vm_uuid, s.nic): s.chassis or "" for s in p.status}
        by_vds: dict[str, list[Request]] = {}
        for need in p.needs:
            names = where.get((need.owner.vm, need.owner.nic), "").split(",")
            requested = tuple(chassis[n].system_id if n in chassis else n for n in names if n)
            by_vds.setdefault(need.vds, []).append(
                Request(
                    need.owner,
                    need.vds,
                    need.network,
                    need.mac,
                    need.vm_name,
                    intent="attribute",
                    chassis=requested,
                )
            )
        got = 0
        vlan_pools = pools(snap.switches, self.settings)
        for vds, requests in by_vds.items():
            try:
                got += len(allocate_ports(self.nb, requests, vlan_pools, busy=p.busy))
            except OvsphereError as exc:
                report.errors.append(exc.message)
                log.error("allocating VLANs on vDS %s: %s", vds, exc.message)
        report.allocated += got
        return got > 0

    def _apply(self, snap: Snapshot, p: Plan, report: PassReport) -> None:
        morefs = {s.uuid: s.moref for s in snap.inventory.switches}
        edited = 0
        for vds, edits in p.port_edits.items():
            if not edits:
                continue
            try:
                report.tasks += reconfigure_ports(self.vc, morefs[vds], edits)
                edited += len(edits)
                for e in edits:
                    log.info("dvPort %s: %s", e.key, e.reason)
            except OvsphereError as exc:
                report.errors.append(exc.message)
                log.error("reconfiguring dvPorts of vDS %s: %s", vds, exc.message)
        report.port_edits += edited
        if edited:
            faults.point("pass:after-dvports")

        results = self.nodes.apply(p.nodes)
        changes = sum(r.changes for r in results.values())
        report.node_changes += changes
        errors = {name: r.error for name, r in results.items()}
        for name in self.settings.transport_nodes:
            errors.setdefault(name, None)
        self.node_errors = {n: e for n, e in errors.items() if e}
        report.errors.extend(f"OVS VM {n}: {e}" for n, e in self.node_errors.items())
        try:
            ovn_ports.set_node_errors(self.nb, errors)
        except OvsphereError as exc:
            report.errors.append(exc.message)
        # The step of a vMotion this round takes, for the crash points.
        move = "prearm" if any(pin.activation for pin in p.pins) else None
        move = "finalize" if p.settled and p.pins else move
        if changes:
            faults.point("pass:after-nodes")
            if move:
                faults.point(f"vmotion:after-{move}-nodes")

        if p.pins:
            try:
                ovn_ports.set_chassis_many(
                    self.nb, [(pin.port, pin.chassis, pin.activation) for pin in p.pins]
                )
                report.pins += len(p.pins)
                for pin in p.pins:
                    log.info("port %s: requested-chassis %s", pin.port, ",".join(pin.chassis))
                faults.point("pass:after-pins")
                if move:
                    faults.point(f"vmotion:after-{move}-pins")
            except OvsphereError as exc:
                report.errors.append(exc.message)

        if p.releases:
            try:
                ovn_ports.write_ports(self.nb, generations={}, delete=p.releases)
                report.released += len(p.releases)
                for name in p.releases:
                    log.info("port %s released (its VLAN passes no dvPort)", name)
                faults.point("pass:after-releases")
            except OvsphereError as exc:
                report.errors.append(exc.message)

        for name in p.delete_networks:
            try:
                delete_network(self.nb, name)
                report.networks_deleted += 1
                log.info("network %s deleted (marked, no port left)", name)
            except OvsphereError as exc:
                report.errors.append(exc.message)
