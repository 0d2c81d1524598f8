"""The lab agent: makes the emulated hosts follow the simulated vCenter.

A long-running process (``ovsphere lab agent``, started by ``lab up``) that
watches the simulator through the vSphere layer and, level-driven, on every
burst of changes:

1. wires each lab VM's vNIC (OVS VMs' trunk vNICs included) to the proxy
   switch of the host vCenter says the VM is on, as interface ``p<port key>``
   of that vDS's bridge: a veth from the VM's namespace (``eth<n>``, the
   vNIC's MAC);
2. loads every proxy switch's flows from the ports' effective settings
   (:mod:`ovsphere.lab.vds`), replacing them only when they changed;
3. moves a VM whose host changed (vMotion): the new link is made before the
   old one is cut (pre-armed as soon as vCenter announces the migration), the
   VM's addresses and routes move with it, and a RARP goes out from each MAC,
   as ESX does at switch-over.

It records what it wired in ``wiring.json`` and its progress in
``agent.json`` (``lab up`` waits for its first pass).  One thread; errors in
one pass are logged and retried on the next.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ovsphere.lab import netlink
from ovsphere.lab.daemons import NodeDirs, ofctl, vsctl
from ovsphere.lab.layout import Layout
from ovsphere.lab.rarp import send_rarp
from ovsphere.lab.state import LabState
from ovsphere.lab.vds import ProxyPort, Uplink, proxy_switch_flows
from ovsphere.model import Inventory, Port
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.ports import fetch_ports
from ovsphere.vsphere.watch import MigrationStarted, Watcher

log = logging.getLogger(__name__)
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Wire:
    """One vNIC's link: VM namespace side and proxy-switch side."""

    vm: str
    nic_key: int
    ifname: str  # inside the VM's namespace
    mac: str
    host: str
    switch_index: int
    port_key: str


def _key(w: Wire) -> str:
    return f"{w.vm}/{w.nic_key}"


class Status:
    """``agent.json``: what ``lab up`` follows (progress lines, passes, the last error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.progress: list[str] = []
        self.generation = 0

    def say(self, line: str) -> None:
        self.progress.append(line)
        self.save(self.generation)

    def save(self, generation: int, error: str | None = None) -> None:
        self.generation = generation
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "generation": generation,
                    "time": time.time(),
                    "pid": os.getpid(),
                    "error": error,
                    "progress": self.progress,
                }
            )
        )
        os.replace(tmp, self.path)


class Agent:
    def __init__(
        self, layout: Layout, state: LabState, conn: Connection, status: Status | None = None
    ) -> None:
        self.layout = layout
        self.state = state
        self.conn = conn
        self.wiring_path = state.dir / "wiring.json"
        self.status = status or Status(state.dir / "agent.json")
        self.wired: dict[str, Wire] = self._load_wiring()
        self.prearmed: dict[str, Wire] = {}
        self.flows: dict[tuple[str, int], list[str]] = {}
        self.generation = 0
        self._vm_morefs: dict[str, str] = {}

    # -- persistence ----------------------------------------------------------
    def _load_wiring(self) -> dict[str, Wire]:
        try:
            return {k: Wire(**v) for k, v in json.loads(self.wiring_path.read_text()).items()}
        except FileNotFoundError:
            return {}

    def _save(self, error: str | None = None) -> None:
        self.wiring_path.write_text(json.dumps({k: asdict(w) for k, w in self.wired.items()}))
        self.status.save(self.generation, error)

    # -- the desired state ----------------------------------------------------
    def desired(self, inv: Inventory) -> dict[str, Wire]:
        topo = self.layout.topology
        lab_vms = set(self.layout.vm_names) | set(self.layout.ovs_vms)
        hosts = {h.moref: h.name for h in inv.hosts}
        isolated = {}
        for i, sw in enumerate(topo.switches):
            switch = inv.switch_named(sw.name)
            pg = inv.portgroup_named(switch, sw.portgroup) if switch else None
            if pg is not None:
                isolated[(pg.switch_uuid, pg.key)] = i
        out = {}
        for vm in inv.vms:
            host = hosts.get(vm.host or "")
            if vm.name not in lab_vms or host is None:
                continue
            for n, nic in enumerate(vm.nics):
                b = nic.backing
                index = isolated.get((b.switch_uuid or "", b.portgroup_key or ""))
                if index is None or not b.port_key or not nic.connected:
                    continue
                w = Wire(vm.name, nic.key, f"eth{n}", nic.mac, host, index, b.port_key)
                out[_key(w)] = w
        return out

    # -- wiring ---------------------------------------------------------------
    def _dirs(self, host: str) -> NodeDirs:
        return NodeDirs(self.state.dir / host)

    def _plug(self, w: Wire, vm_ifname: str, *, up: bool) -> None:
        host_ns = self.layout.ns(w.host)
        port = self.layout.port_ifname(w.switch_index, w.port_key)
        netlink.veth(self.layout.ns(w.vm), vm_ifname, host_ns, port, mac_a=w.mac, up=up)
        vsctl(
            self._dirs(w.host),
            "--may-exist",
            "add-port",
            self.layout.bridge(w.switch_index),
            port,
            "--",
            "set",
            "interface",
            port,
            f"external_ids:ovsphere-port={w.port_key}",
            f"external_ids:ovsphere-vm={w.vm}",
        )

    def _del_port(self, w: Wire) -> None:
        """The wire's port off its host's proxy switch."""
        vsctl(
            self._dirs(w.host),
            "--if-exists",
            "del-port",
            self.layout.bridge(w.switch_index),
            self.layout.port_ifname(w.switch_index, w.port_key),
        )

    def _unplug(self, w: Wire) -> None:
        self._del_port(w)
        netlink.delete_link(self.layout.ns(w.vm), w.ifname)

    def prearm(self, w: Wire) -> None:
        """Make the destination link of a migrating vNIC, its VM end down (idempotent)."""
        spare = f"n{w.ifname}"
        ns = self.layout.ns(w.vm)
        if netlink.link_exists(ns, spare):
            if self.prearmed.get(_key(w)) == w:
                return  # announced twice: the link is there
            # A stale spare: its proxy-switch port goes too, or ovs-vswitchd would keep
            # the port of the deleted veth (same name, no database change to reopen it).
            self._del_port(w)
            netlink.delete_link(ns, spare)
        self._plug(w, spare, up=False)
        # Its flows need its OpenFlow port number: without one the proxy switch would
        # drop the VM's first frames there, the RARP among them.
        vsctl(
            self._dirs(w.host),
            "--timeout=10",
            "wait-until",
            "interface",
            self.layout.port_ifname(w.switch_index, w.port_key),
            "ofport>0",
        )
        self.prearmed[_key(w)] = w

    def switch_over(self, old: Wire, new: Wire) -> None:
        """Cut the old link, bring up the new one in its place, announce the MAC."""
        ns = self.layout.ns(new.vm)
        if self.prearmed.pop(_key(new), None) != new:
            self.prearm(new)
            self.prearmed.pop(_key(new))
        saved = netlink.addresses(ns, old.ifname) if netlink.link_exists(ns, old.ifname) else []
        routes = _routes(ns, old.ifname)
        # The VM is "stunned" only from here to the RARP: one netlink session, no
        # ovs-vsctl. The old link is set aside, its proxy-switch port removed afterwards.
        aside = f"o{old.ifname}"
        if netlink.link_exists(ns, aside):  # left by an agent that died mid-move
            netlink.delete_link(ns, aside)
        cut = time.time()
        had_old = netlink.swap_in(ns, new.ifname, f"n{new.ifname}", aside, saved, routes)
        send_rarp(ns, new.ifname, new.mac)
        self._record_switch_over(old, new, cut, time.time())
        self._unplug(replace(old, ifname=aside) if had_old else old)

    def _record_switch_over(self, old: Wire, new: Wire, cut: float, done: float) -> None:
        """``switchovers.json``: when each move cut the old link and announced the new one
        (wall clock), so a test can tell the lab's own outage from anyone else's."""
        path = self.state.dir / "switchovers.json"
        try:
            log_ = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            log_ = []
        log_.append(
            {
                "vm": new.vm,
                "nic": new.nic_key,
                "from": old.host,
                "to": new.host,
                "cut": cut,
                "announced": done,
            }
        )
        path.write_text(json.dumps(log_[-100:]))

    # -- flows ----------------------------------------------------------------
    def _ofport(self, host: str, ifname: str) -> int | None:
        out = vsctl(self._dirs(host), "--if-exists", "get", "interface", ifname, "ofport").strip()
        return int(out) if out.lstrip("-").isdigit() and int(out) > 0 else None

    def load_flows(
        self, inv: Inventory, ports: dict[tuple[int, str], Port], keep: Sequence[Wire] = ()
    ) -> None:
        """Every proxy switch's flows from the wiring (and ``keep``: links still in use)."""
        topo = self.layout.topology
        teaming = {p.key: p.teaming.uplinks for p in inv.portgroups}
        for i, sw in enumerate(topo.switches):
            switch = inv.switch_named(sw.name)
            uplink_name = switch.uplink_names[0] if switch and switch.uplink_names else "uplink1"
            for host in topo.members(sw):
                proxy = []
                for w in [*self.wired.values(), *keep]:
                    port = ports.get((w.switch_index, w.port_key))
                    ofport = self._ofport(host, self.layout.port_ifname(w.switch_index, w.port_key))
                    if w.host != host or w.switch_index != i or port is None or ofport is None:
                        continue
                    proxy.append(
                        ProxyPort(
                            ofport,
                            w.port_key,
                            w.mac,
                            port.setting,
                            teaming.get(port.portgroup_key or "", ()),
                        )
                    )
                up_port = self._ofport(host, self.layout.uplink_ifname(i))
                uplinks = [Uplink(up_port, uplink_name)] if up_port else []
                flows = proxy_switch_flows(proxy, uplinks)
                if self.flows.get((host, i)) != flows:
                    bridge = self.layout.bridge(i)
                    ofctl(
                        self._dirs(host),
                        "-O",
                        "OpenFlow13",
                        "replace-flows",
                        f"unix:{self._dirs(host).run / bridge}.mgmt",
                        "-",
                        input="\n".join(flows) + "\n",
                    )
                    self.flows[(host, i)] = flows

    # -- one pass -------------------------------------------------------------
    def reconcile(self) -> None:
        inv = read_inventory(self.conn)
        ports: dict[tuple[int, str], Port] = {}
        for i, sw in enumerate(self.layout.topology.switches):
            switch = inv.switch_named(sw.name)
            if switch is not None:
                ports.update({(i, p.key): p for p in fetch_ports(self.conn, switch.moref)})
        want = self.desired(inv)
        moves = []
        for key, w in want.items():
            have = self.wired.get(key)
            if have is None:
                self._plug(w, w.ifname, up=True)
                self.wired[key] = w
            elif have != w:
                moves.append((have, w))
        for key in list(self.wired.keys() - want.keys()):
            self._unplug(self.wired.pop(key))
        for old, new in moves:
            if new.host != old.host and _key(new) not in self.prearmed:
                self.prearm(new)  # the destination port must exist before its flows
        for _, new in moves:
            self.wired[_key(new)] = new
        # Flows first (the destination port starts forwarding, the source keeps forwarding),
        # then the link moves, then the source's flows go: nothing is cut before it moved.
        self.load_flows(inv, ports, keep=[old for old, _ in moves])
        for old, new in moves:
            log.info("moving %s %s: %s -> %s", new.vm, new.ifname, old.host, new.host)
            self.switch_over(old, new)
        if moves:
            self.load_flows(inv, ports)
        self.generation += 1
        self._save()

    def on_migration(self, change: MigrationStarted, inv_hosts: dict[str, str]) -> None:
        dest = inv_hosts.get(change.dest_host or "")
        if dest is None:
            return
        for w in list(self.wired.values()):
            vm_moref = self._vm_morefs.get(w.vm)
            if vm_moref == change.vm and w.host != dest:
                self.prearm(
                    Wire(w.vm, w.nic_key, w.ifname, w.mac, dest, w.switch_index, w.port_key)
                )

    def run(self, until: Callable[[], bool]) -> None:
        watcher = Watcher(self.conn, max_wait=1)
        try:
            for batch in watcher.batches(until=until):
                try:
                    if any(isinstance(c, MigrationStarted) for c in batch):
                        inv = read_inventory(self.conn)
                        self._vm_morefs = {v.name: v.moref for v in inv.vms}
                        hosts = {h.moref: h.name for h in inv.hosts}
                        for c in batch:
                            if isinstance(c, MigrationStarted):
                                self.on_migration(c, hosts)
                    if batch or self.generation == 0:
                        self.reconcile()
                except Exception as exc:  # one bad pass must not end the agent; next pass retries
                    log.exception("lab agent pass failed")
                    self._save(error=f"{type(exc).__name__}: {exc}")
                reap()
        finally:
            watcher.close()
            # `lab down` ends the daemons just before us: collect them as they go.
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                reap()
                time.sleep(0.05)


def _routes(ns: str, ifname: str) -> list[dict[str, Any]]:
    if not netlink.link_exists(ns, ifname):
        return []
    with netlink.ns_handle(ns) as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        out = []
        for r in ip.get_routes(family=2, oif=idx):
            gateway = r.get_attr("RTA_GATEWAY")
            if gateway:
                out.append(
                    {
                        "dst": r.get_attr("RTA_DST") or "0.0.0.0",
                        "dst_len": r["dst_len"],
                        "gateway": gateway,
                    }
                )
        return out


def become_subreaper() -> None:
    """Adopt every orphaned descendant (the daemons we detach), so we can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("cannot become a child subreaper: %s", os.strerror(ctypes.get_errno()))


def reap() -> None:
    """Collect every child that has ended (call only while no subprocess is waited for)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
