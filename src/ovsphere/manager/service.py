"""``ovsphere manager run``: the long-running reconciler, active or standing by.

Concurrency, in one process:

- the main thread takes the NB lock (``ovsphere_manager``; several managers
  may run, ovsdb-server grants the lock to one, the others stand by and take
  over when it dies) and, while it holds the lock, runs reconciliation passes
  one at a time (:class:`~ovsphere.manager.reconciler.Reconciler`);
- a watch thread follows vCenter (:class:`~ovsphere.vsphere.watch.Watcher`,
  with its own session): every burst of changes wakes the main thread, and
  vMotion events update the migrations in flight (pre-arm on
  ``VmBeingHotMigratedEvent``, finalize once vCenter shows the VM on its
  destination *and* the SB shows the destination took its ports over after
  the VM's RARP, roll back on ``VmFailedMigrateEvent``);
- ovsdbapp's IDL thread keeps the NB replica current: a change there that
  this manager did not make (an attach, a detach, a new network) wakes the
  main thread too;
- a second IDL follows the SB's port bindings (read only): while a vMotion
  waits for its destination to take over, a change there wakes the main thread;
- the node pool's threads apply the transport nodes in parallel.

A pass also runs every ``resync_interval`` seconds whatever happened, so a
missed event costs at most that long.  Losing the lock stops acting at once
(the NB refuses the writes of a manager without it) and goes back to standby.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping

from ovsphere.config import Settings
from ovsphere.errors import OvsphereError
from ovsphere.manager import faults
from ovsphere.manager.desired import Move
from ovsphere.manager.nodes import NodePool
from ovsphere.manager.reconciler import Reconciler
from ovsphere.model import Inventory
from ovsphere.ovn.connection import NbClient, TlsFiles
from ovsphere.ovn.southbound import SbReader
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.nics import migrations_in_progress
from ovsphere.vsphere.watch import (
    MigrationDone,
    MigrationFailed,
    MigrationStarted,
    Watcher,
)

log = logging.getLogger(__name__)

LOCK = "ovsphere_manager"  # an OVSDB <id>: letters, digits, underscores
#: seconds before a pass that failed somewhere is tried again
RETRY = 2.0
#: seconds a vMotion stays armed on both hosts, after vCenter shows the VM on its
#: destination, waiting for the destination to see the VM's RARP
ACTIVATION_TIMEOUT = 10.0


class Migrations:
    """vMotions in flight, as the watch reports them: VM moref -> (source, destination).

    A move is forgotten when the plan says it is over (the VM runs on its
    destination and is active there in OVN), when it fails, or when the
    destination has not taken the VM over ``timeout`` seconds after vCenter
    showed it there (no RARP seen: finalizing beats staying armed forever).
    """

    def __init__(self, timeout: float = ACTIVATION_TIMEOUT) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, tuple[str | None, str]] = {}
        self._arrived: dict[str, float] = {}
        self.timeout = timeout

    def seed(self, found: Mapping[str, tuple[str | None, str | None]]) -> None:
        with self._lock:
            self._hosts.update({vm: (src, dst) for vm, (src, dst) in found.items() if dst})

    def started(self, vm: str, source: str | None, dest: str | None) -> None:
        if dest:
            with self._lock:
                self._hosts[vm] = (source, dest)
                self._arrived.pop(vm, None)

    def failed(self, vm: str) -> None:
        self.forget([vm])

    def forget(self, vms: Iterable[str]) -> None:
        with self._lock:
            for vm in vms:
                self._hosts.pop(vm, None)
                self._arrived.pop(vm, None)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._hosts)

    def __call__(self, inventory: Inventory) -> dict[str, Move]:
        """The moves to plan with, their sources filled in from ``inventory``."""
        now = time.monotonic()
        hosts = {vm.moref: vm.host for vm in inventory.vms}
        out = {}
        with self._lock:
            for vm, (src, dst) in list(self._hosts.items()):
                here = hosts.get(vm)
                if src is None and here is not None and here != dst:
                    src = here
                    self._hosts[vm] = (src, dst)
                if here == dst:
                    since = self._arrived.setdefault(vm, now)
                    if now - since > self.timeout:
                        log.warning(
                            "vMotion of %s: no RARP seen on %s %.0f s after vCenter showed the"
                            " VM there; finalizing",
                            vm,
                            dst,
                            self.timeout,
                        )
                        del self._hosts[vm], self._arrived[vm]
                        continue
                if src is not None:
                    out[vm] = Move(src, dst)
        return out


class Manager:
    def __init__(self, settings: Settings, *, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        self.migrations = Migrations()
        self._watching = threading.Event()  # the vCenter watch has its baseline
        self.passes = 0

    def _tls(self) -> TlsFiles | None:
        t = self.settings.tls
        return TlsFiles(t.private_key, t.certificate, t.ca_cert) if t else None

    def _vcenter(self) -> Connection:
        s = self.settings
        return Connection(s.require_vcenter(), verify_tls=not s.insecure)

    def run(self) -> None:
        nb = NbClient(self.settings.require_nb(), tls=self._tls(), lock=LOCK)
        try:
            while not self.stop.is_set():
                self._stand_by(nb)
                if self.stop.is_set():
                    break
                self._act(nb)
        finally:
            nb.close()

    def _stand_by(self, nb: NbClient) -> None:
        deadline = time.monotonic() + 2  # the server's answer to our lock request
        while not (nb.has_lock or nb.idl.is_lock_contended) and time.monotonic() < deadline:
            self.stop.wait(0.02)
        if nb.has_lock:
            log.info("active: this manager holds the NB lock %s", LOCK)
            return
        log.info("standing by: another manager holds the NB lock %s", LOCK)
        while not nb.has_lock and not self.stop.wait(0.2):
            pass
        if nb.has_lock:
            log.info("active: this manager holds the NB lock %s", LOCK)

    def _southbound(self) -> SbReader | None:
        remote = self.settings.manager_sb or self.settings.sb
        if not remote:
            log.warning(
                "no SB configured (manager_sb or sb): a vMotion is finalized as soon as vCenter"
                " shows the VM on its destination, not once the VM is active there"
            )
            return None
        try:
            return SbReader(remote, tls=self._tls())
        except OvsphereError as exc:
            log.warning("%s; finalizing vMotions on vCenter's word alone", exc.message)
            return None

    def _act(self, nb: NbClient) -> None:
        vc = self._vcenter()
        nodes = NodePool(self.settings)
        sb = self._southbound()
        watch_done = threading.Event()
        watcher = threading.Thread(
            target=self._watch, args=(watch_done,), name="vcenter-watch", daemon=True
        )
        try:
            # The watch's baseline first, then the vMotions already under way: a vMotion
            # announced in between is reported by both (harmless), never by neither.
            self._watching.clear()
            watcher.start()
            self._watching.wait(timeout=30)
            self.migrations.seed(migrations_in_progress(vc))
            rec = Reconciler(self.settings, vc, nb, nodes, migrations=self.migrations, sb=sb)
            seen = -1
            seen_sb = sb.change_seqno if sb else 0
            next_resync = 0.0
            while not self.stop.is_set() and nb.has_lock:
                now = time.monotonic()
                changed = nb.idl.change_seqno != seen
                # The SB matters only while a vMotion waits for its destination to take over.
                if sb is not None and sb.change_seqno != seen_sb:
                    seen_sb = sb.change_seqno
                    changed = changed or bool(self.migrations)
                if self.wake.is_set() or changed or now >= next_resync:
                    self.wake.clear()
                    ok = self._pass(rec)
                    seen = nb.idl.change_seqno
                    # After a failure (a node away, a vDS refusing) retry soon, not at resync.
                    delay = self.settings.resync_interval if ok else RETRY
                    next_resync = time.monotonic() + min(delay, self.settings.resync_interval)
                self.wake.wait(0.1)
            if not nb.has_lock and not self.stop.is_set():
                log.warning("lost the NB lock %s: standing by", LOCK)
        finally:
            watch_done.set()
            if watcher.is_alive():
                watcher.join(timeout=10)
            nodes.close()
            if sb is not None:
                sb.close()
            vc.close()

    def _pass(self, rec: Reconciler) -> bool:
        """One pass; False when something failed (the caller retries soon)."""
        try:
            report = rec.run_pass()
        except OvsphereError as exc:
            # A pass that cannot even read (vCenter or the NB away) is retried soon.
            log.error("reconciliation pass failed: %s", exc.message)
            return False
        self.passes += 1
        if report.settled:
            self.migrations.forget(report.settled)
            log.info("vMotion of %s over: finalized", ", ".join(sorted(report.settled)))
        states: dict[str, int] = {}
        for s in report.status:
            states[s.state] = states.get(s.state, 0) + 1
        level = logging.INFO if report.acted or report.errors else logging.DEBUG
        log.log(
            level,
            "pass %d: %d rounds in %.2f s; allocated %d, dvPorts %d in %d tasks, node changes"
            " %d, pins %d, released %d; NICs %s",
            self.passes,
            report.rounds,
            report.seconds,
            report.allocated,
            report.port_edits,
            report.tasks,
            report.node_changes,
            report.pins,
            report.released,
            states,
            extra={"pass": self.passes, "errors": report.errors, "states": states},
        )
        if any(s.state == "pending" for s in report.status) and report.acted:
            self.wake.set()  # ports just configured: check again soon, not in 30 s
        return not report.errors

    def _watch(self, done: threading.Event) -> None:
        conn = self._vcenter()
        watcher = Watcher(conn, max_wait=1)
        try:
            for batch in watcher.batches(until=lambda: done.is_set() or self.stop.is_set()):
                self._watching.set()
                if any(isinstance(c, MigrationDone) for c in batch):
                    faults.delay("watch:before-migrated")
                for change in batch:
                    if isinstance(change, MigrationStarted):
                        log.info(
                            "vMotion of %s to %s announced: pre-arming", change.vm, change.dest_host
                        )
                        self.migrations.started(change.vm, change.source_host, change.dest_host)
                    elif isinstance(change, MigrationFailed):
                        log.info("vMotion of %s failed: rolling back", change.vm)
                        self.migrations.failed(change.vm)
                    elif isinstance(change, MigrationDone):
                        log.info("vMotion of %s to %s done", change.vm, change.dest_host)
                if batch:
                    self.wake.set()
        except OvsphereError as exc:
            log.error("vCenter watch stopped: %s", exc.message)
        finally:
            self._watching.set()  # never leave the main thread waiting on a dead watch
            watcher.close()
            conn.close()
