"""Benchmark: the manager binding every VM NIC of a large vCenter at once, and its cold resync.

Run: ``.venv/bin/python bench/attach_scale.py [--hosts 32] [--nics 4094] [--nics-per-vm 1]``
(about 12 minutes on 2 CPUs); ``--hosts 4 --nics 200`` is a quick run for development.
Nothing needs a namespace: every daemon listens on a unix socket in a temporary directory
(the SB also on loopback), and all of it is removed at the end, on failure too.

Set up (timed, not the measured figure):

1. the vCenter simulator with ``--hosts`` hosts on one vDS; ``prepare`` makes the isolated
   port group; one OVS VM ``ovs-<host>`` per host with a trunk vNIC; then
   ``--nics / --nics-per-vm`` VMs, spread round-robin over the hosts, created from several
   sessions at once through the API (``CreateVM_Task`` + power on, as lab/vms.py does);
2. OVN central (NB + SB ovsdb-servers and ovn-northd, as the functional tests start it);
3. one plain ``ovsdb-server`` with an Open_vSwitch database per OVS VM: no data plane, no
   ovs-vswitchd.  The manager waits for vswitchd after each write (``cur_cfg``) and reads
   what vswitchd reports (a NIC's ``mac_in_use``, an interface's ``mtu``), so a stand-in
   process (``--vswitchd-standin``) does that database part and nothing else: it copies
   ``next_cfg`` to ``cur_cfg``, gives new interfaces an ofport, reports the trunk vNIC's
   MAC as ``eth0`` (any other probed name: "No such device"), and an MTU (1600 on br-phy);
4. ``ovsphere manager run --log-json`` as a subprocess, with a settings file naming the NB,
   the SB, the isolated port group and every transport node (``resync_interval`` 600 s, so
   that no timed pass falls into the measurement); the network ``bench``; the manager's
   first pass (nothing tagged yet) is waited for.

Measured:

- the custom attribute ``ovsphere.network=bench`` is set on every VM (``SetField``, from
  several sessions at once), then the manager is woken (:func:`wake`: the simulator does
  not tell its PropertyCollector about custom values, so the manager's watch cannot);
  from "all tagged" until every NIC is bound, checked from outside the manager (the NB and
  each OVS VM read with ``ovsdb-client``, the dvPorts with FetchDVPorts, after each burst
  of the manager's log): every NIC has its logical port on ``bench`` with a VLAN unique on
  the vDS and ``requested-chassis`` = the OVS VM of its host; its dvPort has that access
  VLAN, unblocked; the OVS VM of its host has the patch pair (trunk VLAN <-> br-int port
  with ``iface-id`` = the logical port) and no other OVS VM has it.  OVN's ``up`` is not
  part of it: with no ovn-controller nothing claims the ports, so ``ovsphere status``
  shows them "pending: not yet up in OVN" (the final state counts say so);
- vCenter tasks: the ``ReconfigureDVPort_Task`` calls of the manager's passes ("dvPorts N
  in M tasks"), beside the simulator's count of DvsPortReconfiguredEvent (one per task);
- OVN transactions: records appended to the NB database file (one per committed
  transaction that changed something), by writer (ovsphere's ports and VLAN ledger,
  northd), and the same for the SB;
- the manager's peak RSS (VmHWM), and the CPU seconds of every process during the attach;
- cold resync: the manager is stopped (SIGTERM) and started again; how long its first pass
  takes (it must find nothing to do) and the restart until that pass ended, beside a bare
  pyVmomi read of the same inventory (one RetrievePropertiesEx of every VM's name, uuid,
  devices, host, power state and custom values, plus FetchDVPorts of the isolated port
  group, with no manager running) and ovsphere's own read (read_inventory + fetch_ports).

Prints the figures and writes them to ``bench/results/attach_scale.json`` (or ``--out``).
"""

# pyVmomi builds its data objects at run time; its constructors carry no types.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pyVmomi import vim

from ovsphere.config import Settings, VCenterEndpoint, load_settings
from ovsphere.lab.daemons import OVS_SCHEMA, NodeDirs, require, run, spawn, stop, vsctl
from ovsphere.lab.ovn_central import Central, start_central
from ovsphere.lab.simulator import Simulator, SimulatorOptions, build_simulator
from ovsphere.lab.state import LabState
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.logic.ovs_vms import OvsVmRule
from ovsphere.manager.desired import INTENT_ATTRIBUTE, passes
from ovsphere.manager.operations import create_network, status
from ovsphere.model import Portgroup, Switch, VirtualMachine, VlanRange
from ovsphere.ovn import owners
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.ports import port_name
from ovsphere.testing.ovn import loopback_central
from ovsphere.transport import Patch
from ovsphere.transport.model import OWNER, OWNER_KEY, VDS_KEY, ObservedBridge, ObservedPort
from ovsphere.transport.plan import observe
from ovsphere.vsphere.collector import retrieve
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import VM_PATHS, read_inventory
from ovsphere.vsphere.ports import PortQuery, fetch_ports
from ovsphere.vsphere.prepare import prepare

RESULTS = Path(__file__).parent / "results"
PORTGROUP = "ovsphere-isolated"
NETWORK = "bench"
TRUNK = (VlanRange(0, 4094),)
RULE = OvsVmRule(name_pattern=r"^ovs-", attribute=None)
USER = "ovsphere"
TRANSPORT_MTU = 1600
#: the trunk vNIC's name inside every OVS VM, as the stand-in reports it
TRUNK_IF = "eth0"
PASS_LINE = re.compile(
    r"^pass (\d+): (\d+) rounds in ([\d.]+) s; allocated (\d+), dvPorts (\d+) in (\d+) tasks, "
    r"node changes (\d+), pins (\d+), released (\d+)"
)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def proc_status(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM), in kB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its children it has waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


# --- vCenter ----------------------------------------------------------------------------------


@dataclass
class VcInventory:
    """What the bench built in vCenter, and what every NIC should end up as."""

    switch: Switch
    portgroup: Portgroup
    apps: list[VirtualMachine]
    host_names: dict[str, str]  # host moref -> name

    @property
    def nics(self) -> int:
        return sum(len(vm.nics) for vm in self.apps)


def ovs_vm(host: str) -> str:
    return f"ovs-{host}"


def build_vcenter(
    ep: VCenterEndpoint, hosts: int, vms: int, nics_per_vm: int, workers: int
) -> VcInventory:
    with Connection(ep, verify_tls=False) as conn:
        prepare(
            conn, dvs="DVS0", portgroup=PORTGROUP, rule=RULE, trunk=TRUNK,
            min_ports=vms * nics_per_vm + hosts + 8,
        )
        inv = read_inventory(conn)
        switch = inv.switch_named("DVS0")
        assert switch is not None
        pg = inv.portgroup_named(switch, PORTGROUP)
        assert pg is not None
        for h in inv.hosts:
            create_vm(conn, inv, ovs_vm(h.name), h.moref, [NicSpec(pg)])
        # Now that the OVS VMs exist, their ports become trunks.
        prepare(conn, dvs="DVS0", portgroup=PORTGROUP, rule=RULE, trunk=TRUNK, min_ports=64)
        host_refs = [h.moref for h in inv.hosts]

    sessions = threading.local()
    made: list[Connection] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        c: Connection | None = getattr(sessions, "conn", None)
        if c is None:
            c = sessions.conn = Connection(ep, verify_tls=False)
            with lock:
                made.append(c)
        host = host_refs[i % len(host_refs)]
        create_vm(c, inv, f"app-{i:04d}", host, [NicSpec(pg)] * nics_per_vm)

    try:
        with ThreadPoolExecutor(workers) as pool:
            for n, _ in enumerate(pool.map(create, range(vms)), start=1):
                if n % 500 == 0:
                    log(f"  {n} of {vms} VMs created")
    finally:
        for c in made:
            c.close()
    with Connection(ep, verify_tls=False) as conn:
        inv = read_inventory(conn)
    apps = [vm for vm in inv.vms if vm.name.startswith("app-")]
    if len(apps) != vms or any(not n.backing.port_key for vm in apps for n in vm.nics):
        raise RuntimeError(f"made {len(apps)} of {vms} VMs, or a NIC without a dvPort")
    return VcInventory(switch, pg, apps, {h.moref: h.name for h in inv.hosts})


def tag_all(
    ep: VCenterEndpoint, vms: Sequence[VirtualMachine], workers: int
) -> tuple[float, float]:
    """``ovsphere.network=bench`` on every VM; (monotonic time of the first, of the last)."""
    conns = [Connection(ep, verify_tls=False) for _ in range(workers)]
    try:
        cfm = conns[0].si.content.customFieldsManager
        if not any(f.name == INTENT_ATTRIBUTE for f in cfm.field or ()):
            cfm.AddCustomFieldDef(name=INTENT_ATTRIBUTE, moType=vim.VirtualMachine)
        key = next(f.key for f in cfm.field if f.name == INTENT_ATTRIBUTE)
        for c in conns:
            c.si  # noqa: B018 - log in before the clock starts

        def tag(part: Sequence[VirtualMachine], conn: Connection) -> None:
            si = conn.si
            for vm in part:
                si.content.customFieldsManager.SetField(
                    entity=vim.VirtualMachine(vm.moref, si._stub), key=key, value=NETWORK
                )

        with ThreadPoolExecutor(workers) as pool:
            first = time.monotonic()
            futures = [pool.submit(tag, vms[i::workers], c) for i, c in enumerate(conns)]
            for f in futures:
                f.result()
            last = time.monotonic()
    finally:
        for c in conns:
            c.close()
    return first, last


def wake(nb: str) -> None:
    """Wake the manager as its vCenter watch would have on the first tag.

    The simulator's SetField changes the VM without telling its PropertyCollector (govmomi
    0.24.2 simulator/custom_fields_manager.go, SetField: no Map.Update), so the manager's
    watch never sees a tag; an NB change the manager did not make wakes it just the same.
    """
    with NbClient(nb) as client, client.transaction("wake the manager") as txn:
        row = next(iter(client.api.tables["NB_Global"].rows.values()))
        txn.add(client.api.db_set("NB_Global", row.uuid,
                                  ("external_ids", {"bench:tagged": str(time.time())})))


def bare_read(ep: VCenterEndpoint, inv: VcInventory) -> dict[str, float]:
    """Seconds for a bare pyVmomi read of the inventory, and for ovsphere's read of it."""
    with Connection(ep, verify_tls=False) as conn:
        si = conn.si
        content = si.content
        start = time.monotonic()
        vms = retrieve(si, content.rootFolder, vim.VirtualMachine, VM_PATHS)
        vm_seconds = time.monotonic() - start
        criteria = vim.dvs.PortCriteria(portgroupKey=[inv.portgroup.key], inside=True)
        start = time.monotonic()
        ports = vim.DistributedVirtualSwitch(inv.switch.moref, si._stub).FetchDVPorts(criteria)
        port_seconds = time.monotonic() - start
        start = time.monotonic()
        ours = read_inventory(conn)
        inventory_seconds = time.monotonic() - start
        start = time.monotonic()
        our_ports = fetch_ports(conn, inv.switch.moref, PortQuery(portgroups=[inv.portgroup.key]))
        our_port_seconds = time.monotonic() - start
    assert len(vms) == len(ours.vms) and len(ports) == len(our_ports)
    return {
        "vms": len(vms),
        "ports": len(ports),
        "pyvmomi_retrieve_vms_seconds": round(vm_seconds, 2),
        "pyvmomi_fetch_dvports_seconds": round(port_seconds, 2),
        "pyvmomi_total_seconds": round(vm_seconds + port_seconds, 2),
        "ovsphere_read_inventory_seconds": round(inventory_seconds, 2),
        "ovsphere_fetch_ports_seconds": round(our_port_seconds, 2),
        "ovsphere_total_seconds": round(inventory_seconds + our_port_seconds, 2),
    }


def port_events(ep: VCenterEndpoint) -> int:
    """How many DvsPortReconfiguredEvent the simulator has posted (one per task)."""
    with Connection(ep, verify_tls=False) as conn:
        manager = conn.si.content.eventManager
        spec = vim.event.EventFilterSpec(eventTypeId=["DvsPortReconfiguredEvent"])
        collector = manager.CreateCollectorForEvents(spec)
        try:
            collector.SetCollectorPageSize(1000)
            collector.RewindCollector()
            seen: set[int] = set()
            while True:
                page = collector.ReadNextEvents(1000)
                if not page:
                    break
                seen.update(e.key for e in page)
            return len(seen)
        finally:
            collector.DestroyCollector()


# --- transport nodes without a data plane -------------------------------------------------------


def start_node_db(name: str, dirs: NodeDirs, state: LabState) -> None:
    """One plain ovsdb-server with an Open_vSwitch database and br-phy (no vswitchd)."""
    dirs.make()
    db = dirs.root / "conf.db"
    run([require("ovsdb-tool"), "create", str(db), str(OVS_SCHEMA)])
    sock = dirs.run / "db.sock"
    spawn(
        name,
        "ovsdb-server",
        [str(db), f"--remote=punix:{sock}", f"--unixctl={dirs.run / 'ovsdb-server.ctl'}"],
        dirs=dirs,
        state=state,  # recorded as it starts: a failure after it leaks nothing
        ready=sock,
    )
    vsctl(dirs, "--no-wait", "init")
    # The tunnel endpoint's bridge, made by the operator (as lab/nodes.py does); the MTU check
    # of every pass reads its interface's MTU.
    vsctl(dirs, "--no-wait", "add-br", "br-phy", "--", "set", "bridge", "br-phy",
          "datapath_type=netdev")


def standin_main(spec_path: Path) -> None:
    """What ovs-vswitchd writes to OVSDB, for every node in ``spec_path``, until SIGTERM."""
    from ovs import poller
    from ovs.db import idl as ovs_idl

    spec = json.loads(spec_path.read_text())
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    mtus: dict[str, int] = spec["mtu"]

    @dataclass
    class Node:
        index: int
        idl: Any
        nics: dict[str, str]
        seen: int = -1
        txn: Any = None
        ofport: int = 1

        def step(self) -> None:
            self.idl.run()
            if self.txn is not None:
                if self.txn.commit() == ovs_idl.Transaction.INCOMPLETE:
                    return
                self.txn = None
                self.seen = -1  # look again: a write may have failed or raced
            if not self.idl.has_ever_connected() or self.idl.change_seqno == self.seen:
                return
            self.seen = self.idl.change_seqno
            txn = ovs_idl.Transaction(self.idl)
            txn.add_comment("vswitchd stand-in")
            changed = False
            for row in self.idl.tables["Open_vSwitch"].rows.values():
                if row.cur_cfg < row.next_cfg:
                    row.cur_cfg = row.next_cfg
                    changed = True
            for iface in self.idl.tables["Interface"].rows.values():
                if iface.ofport:
                    continue
                changed = True
                if iface.type in ("", "system"):
                    mac = self.nics.get(iface.name)
                    if mac is None:
                        iface.ofport = [-1]
                        iface.error = [f"could not open network device {iface.name} "
                                       "(No such device)"]
                        continue
                    iface.mac_in_use = [mac]
                    iface.mtu = [1500]
                elif iface.type == "internal":
                    n = self.ofport
                    iface.mac_in_use = [f"02:00:{self.index >> 8:02x}:{self.index & 255:02x}:"
                                        f"{n >> 8 & 255:02x}:{n & 255:02x}"]
                    iface.mtu = [mtus.get(iface.name, 1500)]
                iface.ofport = [self.ofport]
                self.ofport += 1
            if not changed:
                txn.abort()  # a transaction object holds the IDL until it ends
                return
            self.txn = txn
            if txn.commit() != ovs_idl.Transaction.INCOMPLETE:
                self.txn = None
                self.seen = -1

    nodes = []
    for i, (remote, nics) in enumerate(spec["nodes"].items()):
        helper = ovs_idl.SchemaHelper(location=str(OVS_SCHEMA))
        helper.register_columns("Open_vSwitch", ["next_cfg", "cur_cfg"])
        helper.register_columns("Interface", ["name", "type", "ofport", "mac_in_use", "mtu",
                                              "error"])
        nodes.append(Node(i, ovs_idl.Idl(remote, helper), nics))
    try:
        while not stopping.is_set():
            for node in nodes:
                node.step()
            wait = poller.Poller()
            for node in nodes:
                node.idl.wait(wait)
            wait.timer_wait(200)
            wait.block()
    finally:
        for node in nodes:
            node.idl.close()


@dataclass
class Standin:
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, root: Path, nodes: dict[str, tuple[str, str]]) -> Standin:
        """``nodes``: OVS VM name -> (its OVSDB remote, its trunk vNIC's MAC)."""
        spec = root / "standin.json"
        spec.write_text(json.dumps({
            "nodes": {remote: {TRUNK_IF: mac} for remote, mac in nodes.values()},
            "mtu": {"br-phy": TRANSPORT_MTU},
        }))
        out = open(root / "standin.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            process = subprocess.Popen(
                [sys.executable, __file__, "--vswitchd-standin", str(spec)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        finally:
            out.close()
        return cls(process)

    def stop(self) -> None:
        end(self.process)


def end(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM by PID, SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the manager ------------------------------------------------------------------------------


def config_text(nb: str, sb: str, ep: VCenterEndpoint, nodes: dict[str, str]) -> str:
    lines = [
        f"vcenter = {json.dumps(f'https://{ep.user}@{ep.host}:{ep.port}{ep.path}')}",
        "insecure = true",
        f"nb = {json.dumps(nb)}",
        f"sb = {json.dumps(sb)}",
        f"portgroup = {json.dumps(PORTGROUP)}",
        'transport_interface = "br-phy"',
        f"transport_mtu = {TRANSPORT_MTU}",
        # No timed pass may fall into the measurement: the bench wakes the manager (wake()).
        "resync_interval = 600",
        "",
        "[ovs_vm]",
        'name_pattern = "^ovs-"',
    ]
    for i, (name, remote) in enumerate(sorted(nodes.items())):
        lines += [
            "",
            f"[transport_nodes.{json.dumps(name)}]",
            f"ovsdb = {json.dumps(remote)}",
            f'encap_ip = "127.0.{1 + i // 250}.{1 + i % 250}"',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class PassLine:
    number: int
    rounds: int
    seconds: float
    allocated: int
    edits: int
    tasks: int
    node_changes: int
    pins: int
    level: str
    seen_at: float  # monotonic, when the bench read it


@dataclass
class ManagerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float
    offset: int = 0
    passes: list[PassLine] = field(default_factory=list)
    peak_rss_kb: int = 0
    errors: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, config: Path, log_path: Path, password: str, verbose: bool) -> ManagerProcess:
        argv = [sys.executable, "-m", "ovsphere", "--config", str(config)]
        argv += ["-vv"] if verbose else []
        argv += ["manager", "run", "--log-json"]
        env = {**os.environ, "OVSPHERE_VCENTER_PASSWORD": password}
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, env=env)
        finally:
            out.close()
        return cls(process, log_path, time.monotonic())

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> list[PassLine]:
        """Read the log's new lines; return the pass lines among them."""
        self.peak_rss_kb = max(self.peak_rss_kb, proc_status(self.pid, "VmRSS"))
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end_of_lines = data.rfind(b"\n") + 1
        self.offset += end_of_lines
        new = []
        now = time.monotonic()
        for raw in data[:end_of_lines].splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            message = str(record.get("message", ""))
            if record.get("level") in ("error", "critical"):
                self.errors.append(message)
            m = PASS_LINE.match(message)
            if m and record.get("logger") == "ovsphere.manager.service":
                g = m.groups()
                new.append(PassLine(int(g[0]), int(g[1]), float(g[2]), int(g[3]), int(g[4]),
                                    int(g[5]), int(g[6]), int(g[7]), str(record["level"]), now))
        self.passes += new
        return new

    def wait_for_pass(self, timeout: float, after: int = 0) -> PassLine:
        deadline = time.monotonic() + timeout
        while True:
            for p in self.poll():
                if p.number > after:
                    return p
            if self.process.poll() is not None:
                raise RuntimeError(f"the manager exited ({self.process.returncode}); "
                                   f"see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no manager pass within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        end(self.process)


# --- "bound", checked from outside the manager ----------------------------------------------------


@dataclass(frozen=True)
class Expected:
    port: str  # logical port name
    vm_uuid: str
    mac: str
    port_key: str
    node: str  # the OVS VM of the VM's host


def ovsdb_select(remote: str, db: str, tables: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Rows of ``tables`` (name -> columns), read once with ``ovsdb-client`` (C, not a Python
    IDL replica: a replica of every node in this process would parse every change the manager
    makes, on the CPUs the manager needs)."""
    ops = [{"op": "select", "table": t, "where": [], "columns": ["_uuid", *cols]}
           for t, cols in tables.items()]
    out = subprocess.run([require("ovsdb-client"), "transact", remote, json.dumps([db, *ops])],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return {t: r["rows"] for t, r in zip(tables, json.loads(out), strict=True)}


def _atoms(value: Any) -> list[Any]:
    """An OVSDB set in JSON (``["set", [...]]``, or its one member) as a list."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def _map(value: Any) -> dict[str, str]:
    return dict(value[1]) if isinstance(value, list) and value and value[0] == "map" else {}


def _uuid(value: Any) -> str:
    return str(value[1])


def node_patches(remote: str) -> tuple[Patch, ...]:
    """The complete patch pairs on one OVS VM, judged as the manager judges them."""
    rows = ovsdb_select(remote, "Open_vSwitch", {
        "Bridge": ["name", "ports", "datapath_type", "fail_mode", "external_ids"],
        "Port": ["name", "interfaces", "tag", "external_ids"],
        "Interface": ["name", "type", "options", "external_ids"],
    })
    ifaces = {_uuid(r["_uuid"]): r for r in rows["Interface"]}
    ports = {_uuid(r["_uuid"]): r for r in rows["Port"]}
    bridges, observed = [], []
    for b in rows["Bridge"]:
        ids = _map(b["external_ids"])
        owned = ids.get(OWNER_KEY) == OWNER
        fail_mode = _atoms(b["fail_mode"])
        bridges.append(ObservedBridge(b["name"], owned, b["datapath_type"] or "system",
                                      fail_mode[0] if fail_mode else "",
                                      ids.get(VDS_KEY) if owned else None))
        for port_ref in _atoms(b["ports"]):
            port = ports[_uuid(port_ref)]
            members = _atoms(port["interfaces"])
            iface = ifaces[_uuid(members[0])] if members else None
            tag = _atoms(port["tag"])
            observed.append(ObservedPort(
                name=port["name"], bridge=b["name"],
                owned=_map(port["external_ids"]).get(OWNER_KEY) == OWNER,
                type=iface["type"] if iface else "", tag=tag[0] if tag else None,
                peer=_map(iface["options"]).get("peer") if iface else None,
                external_ids=_map(iface["external_ids"]) if iface else {},
            ))
    return observe(bridges=bridges, ports=observed, chassis_keys={}, nics={}, mtu={}).patches


class Checker:
    """Reads the NB, every OVS VM and vCenter's ports and says how many NICs are bound."""

    def __init__(self, nb: str, nodes: dict[str, str], ep: VCenterEndpoint,
                 inv: VcInventory) -> None:
        self.inv = inv
        self.nb = nb
        self.nodes = nodes
        self.last_check_seconds = 0.0
        self.confirmed_at = 0.0
        self.expected = [
            Expected(port_name(vm.instance_uuid, n.key), vm.instance_uuid, n.mac,
                     n.backing.port_key or "", ovs_vm(inv.host_names[vm.host or ""]))
            for vm in inv.apps
            for n in vm.nics
        ]
        self.vc = Connection(ep, verify_tls=False)

    def logical_ports(self) -> dict[str, tuple[str, str, int, str]]:
        """Port name -> (network, vDS, VLAN, requested-chassis) of ovsphere's ports."""
        rows = ovsdb_select(self.nb, "OVN_Northbound", {
            "Logical_Switch": ["name", "ports"],
            "Logical_Switch_Port": ["name", "options", "external_ids"],
        })
        network = {_uuid(p): ls["name"] for ls in rows["Logical_Switch"]
                   for p in _atoms(ls["ports"])}
        out = {}
        for lsp in rows["Logical_Switch_Port"]:
            ids = _map(lsp["external_ids"])
            if owners.VLAN in ids and owners.owned(ids):
                out[lsp["name"]] = (network.get(_uuid(lsp["_uuid"]), ""), ids.get(owners.VDS, ""),
                                    int(ids[owners.VLAN]),
                                    _map(lsp["options"]).get("requested-chassis", ""))
        return out

    def ovn_and_nodes(self) -> tuple[Counter[str], dict[str, int]]:
        """Per condition, how many NICs meet it; and every NIC's VLAN (for the dvPorts)."""
        lports = self.logical_ports()
        patches: dict[str, list[tuple[str, Patch]]] = {}
        for name, remote in self.nodes.items():
            for patch in node_patches(remote):
                patches.setdefault(patch.iface_id, []).append((name, patch))
        counts: Counter[str] = Counter()
        vlans: dict[str, int] = {}
        for e in self.expected:
            if e.port not in lports:
                continue
            network, vds, vlan, chassis = lports[e.port]
            if network != NETWORK or vds != self.inv.switch.uuid:
                continue
            counts["logical port"] += 1
            vlans[e.port_key] = vlan
            if chassis == e.node:
                counts["requested-chassis"] += 1
            if patches.get(e.port) == [(e.node, Patch(vds, vlan, e.port, e.mac, e.vm_uuid))]:
                counts["patch on its OVS VM only"] += 1
        counts["distinct VLANs"] = len(set(vlans.values()))
        return counts, vlans

    def dvports(self, vlans: dict[str, int]) -> int:
        ports = fetch_ports(self.vc, self.inv.switch.moref,
                            PortQuery(portgroups=[self.inv.portgroup.key]))
        return sum(1 for p in ports if p.key in vlans and passes(p.setting) == vlans[p.key])

    def wait_bound(self, timeout: float, manager: ManagerProcess) -> tuple[float, Counter[str]]:
        """Until every NIC is bound; the monotonic time the check saw it.

        The manager logs every change it makes, so a check runs once its log has grown and
        then been quiet for half a second (a burst of changes is over), and at least every
        10 s: checking all the time would take CPU from the manager on a small machine.
        The time returned is when the reads of the NB and of every OVS VM found all done;
        the dvPort read that follows (seconds, at this size) confirms the dvPorts, which
        the manager sets before it adds the patches (``confirmed_at``: when it ended).
        """
        total = len(self.expected)
        deadline = time.monotonic() + timeout
        size, quiet_since, checked = -1, time.monotonic(), 0.0
        counts: Counter[str] = Counter()
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            grown = manager.log_path.stat().st_size
            if grown != size:
                size, quiet_since = grown, now
            if not (quiet_since > checked and now - quiet_since >= 0.5) and now - checked < 10:
                continue
            checked = now
            manager.poll()
            counts, vlans = self.ovn_and_nodes()
            seen_at = time.monotonic()
            if all(counts[k] == total for k in
                   ("logical port", "requested-chassis", "patch on its OVS VM only",
                    "distinct VLANs")):
                counts["dvPort VLAN, unblocked"] = self.dvports(vlans)
                if counts["dvPort VLAN, unblocked"] == total:
                    self.confirmed_at = time.monotonic()
                    self.last_check_seconds = self.confirmed_at - now
                    return seen_at, counts
            log("  " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" of {total}")
            if manager.process.poll() is not None:
                raise RuntimeError(f"the manager exited; see {manager.log_path}")
            if now > deadline:
                raise RuntimeError(f"not all bound after {timeout:.0f} s: {dict(counts)}")

    def close(self) -> None:
        self.vc.close()


# --- OVSDB transactions, from the database files ----------------------------------------------


def db_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a standalone OVSDB file (schema first, then one per transaction)."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        header = data[pos:header_end].split()
        if len(header) < 3 or header[:2] != [b"OVSDB", b"JSON"]:
            raise ValueError(f"{path}: not an OVSDB record at byte {pos}")
        size = int(header[2])
        out.append(json.loads(data[header_end + 1 : header_end + 1 + size]))
        pos = header_end + 1 + size
        while pos < len(data) and data[pos : pos + 1] == b"\n":
            pos += 1
    return out


@dataclass
class DbLog:
    path: Path
    inode: int = 0
    start: int = 0

    def mark(self) -> None:
        self.inode = self.path.stat().st_ino
        self.start = len(db_records(self.path))

    def since(self) -> list[dict[str, Any]] | None:
        """The transactions committed since :meth:`mark`; None if the file was compacted."""
        if self.path.stat().st_ino != self.inode:
            return None
        records = db_records(self.path)
        return records[self.start :] if len(records) >= self.start else None


WAKE = "the bench's wake-up (not counted)"


def nb_writer(record: dict[str, Any]) -> str:
    """Who wrote an NB transaction, judged by what it touched."""
    tables = {t for t in record if not t.startswith("_")}
    text = json.dumps(record)
    if '"bench:tagged"' in text:
        return WAKE
    if "Logical_Switch_Port" in tables and '"ovsphere:vlan"' in text:
        return "ovsphere: logical ports + VLAN ledger"
    if tables == {"Logical_Switch_Port"}:
        return "ovsphere: requested-chassis, or northd: up" if "requested-chassis" in text else (
            "northd: up")
    if tables == {"NB_Global"}:
        return "ovsphere: ledger/node errors" if "ovsphere:" in text else "northd: NB_Global"
    return "other: " + ",".join(sorted(tables))


def count_txns(records: list[dict[str, Any]] | None, writer: Callable[[dict[str, Any]], str]
               ) -> dict[str, Any]:
    if records is None:
        return {"total": None, "note": "the database was compacted meanwhile: not counted"}
    by = Counter(writer(r) for r in records)
    return {"total": sum(n for w, n in by.items() if w != WAKE), "by": dict(by)}


def sb_writer(record: dict[str, Any]) -> str:
    return ",".join(sorted(t for t in record if not t.startswith("_")))


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Lab:
    root: Path
    #: the OVSDB daemons, each recorded as it starts
    daemons: LabState = field(init=False)
    sim: Simulator | None = None
    standin: Standin | None = None
    managers: list[ManagerProcess] = field(default_factory=list)
    checker: Checker | None = None

    def __post_init__(self) -> None:
        self.daemons = LabState("daemons", root=self.root)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each kind of process of the run (and the bench)."""
        out: dict[str, float] = {}
        for r in self.daemons.record.processes:
            kind = r.name.split("/")[-1] if r.name.startswith("central") else "node ovsdb-servers"
            with contextlib.suppress(FileNotFoundError):
                out[kind] = out.get(kind, 0.0) + cpu_seconds(r.pid)
        pids = {"vcsim": self.sim.pid if self.sim else 0,
                "vswitchd stand-in": self.standin.process.pid if self.standin else 0}
        pids.update({f"manager {i + 1}": m.pid for i, m in enumerate(self.managers)})
        for kind, pid in pids.items():
            with contextlib.suppress(FileNotFoundError):
                out[kind] = out.get(kind, 0.0) + (cpu_seconds(pid) if pid else 0.0)
        # Its ovsdb-client runs are children it waited for; the manager is not waited for yet.
        out["bench (tagging, checks)"] = cpu_seconds(os.getpid(), children=True)
        return out

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()
        for m in self.managers:
            m.stop()
        if self.standin is not None:
            self.standin.stop()
        for p in reversed(self.daemons.record.processes):
            stop(p)
        if self.sim is not None:
            self.sim.stop()


@contextlib.contextmanager
def lab(keep: bool) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="ovsphere-attach-scale-"))
    state = Lab(root)
    try:
        yield state
    except BaseException:
        if not keep:
            log("the run failed; --keep keeps its directory (the logs) for a look")
        raise
    finally:
        state.close()
        if keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Env:
    """Everything the measurements need, once set up."""

    ep: VCenterEndpoint
    password: str
    inv: VcInventory
    central: Central
    nodes: dict[str, str]  # OVS VM name -> its OVSDB remote
    config: Path
    settings: Settings
    timings: dict[str, float] = field(default_factory=dict)


def setup(args: argparse.Namespace, lab: Lab) -> Env:
    vms = -(-args.nics // args.nics_per_vm)
    timings: dict[str, float] = {}
    log(f"vCenter: simulator, {args.hosts} hosts, {vms} VMs x {args.nics_per_vm} NICs")
    start = time.monotonic()
    password = "bench-" + os.urandom(6).hex()
    lab.sim = Simulator.start(
        SimulatorOptions(hosts=args.hosts, clusters=1, vms=0, user=USER, password=password),
        binary=build_simulator(), log_path=lab.root / "vcsim.log",
    )
    ep = VCenterEndpoint(host=lab.sim.host, port=lab.sim.port, user=USER,
                         password=SecretStr(password))
    inv = build_vcenter(ep, args.hosts, vms, args.nics_per_vm, args.workers)
    timings["vcenter_seconds"] = round(time.monotonic() - start, 1)

    log("OVN central and one ovsdb-server per OVS VM (no vswitchd)")
    start = time.monotonic()
    central = loopback_central(lab.root / "ovn")
    start_central(central, state=lab.daemons)
    nodes: dict[str, str] = {}
    trunk_macs: dict[str, str] = {}
    with Connection(ep, verify_tls=False) as conn:
        full = read_inventory(conn)
    for vm in full.vms:
        if RULE.matches(vm):
            dirs = NodeDirs(lab.root / "nodes" / vm.name)
            start_node_db(vm.name, dirs, lab.daemons)
            nodes[vm.name] = f"unix:{dirs.run / 'db.sock'}"
            trunk_macs[vm.name] = vm.nics[0].mac
    lab.standin = Standin.start(lab.root, {n: (nodes[n], trunk_macs[n]) for n in nodes})
    config = lab.root / "ovsphere.toml"
    config.write_text(config_text(central.nb_unix, central.sb_tcp, ep, nodes))
    settings = load_settings(environ={"OVSPHERE_VCENTER_PASSWORD": password}, config_file=config)
    with NbClient(central.nb_unix) as nb:
        create_network(nb, NETWORK)
    timings["ovn_and_nodes_seconds"] = round(time.monotonic() - start, 1)
    return Env(ep, password, inv, central, nodes, config, settings, timings)


def attach(args: argparse.Namespace, lab: Lab, env: Env) -> dict[str, Any]:
    """The manager's first pass (not measured), then tag every VM and wait until all bound."""
    log("manager: first pass (nothing tagged yet)")
    start = time.monotonic()
    manager = ManagerProcess.start(env.config, lab.root / "manager-1.log", env.password,
                                   verbose=False)
    lab.managers.append(manager)
    first = manager.wait_for_pass(args.timeout)
    env.timings["manager_first_pass_seconds"] = first.seconds
    env.timings["manager_start_to_first_pass_seconds"] = round(time.monotonic() - start, 1)
    time.sleep(2)
    manager.poll()
    lab.checker = checker = Checker(env.central.nb_unix, env.nodes, env.ep, env.inv)

    db_dir = env.central.members[0].dirs.root
    nb_log, sb_log = DbLog(db_dir / "nb.db"), DbLog(db_dir / "sb.db")
    nb_log.mark()
    sb_log.mark()
    events_before = port_events(env.ep)
    passes_before = len(manager.passes)
    last_pass = manager.passes[-1].number
    cpu_before = lab.cpu()

    log(f"tagging {len(env.inv.apps)} VMs {INTENT_ATTRIBUTE}={NETWORK} "
        f"({args.workers} sessions)")
    tag_first, tag_last = tag_all(env.ep, env.inv.apps, args.workers)
    wake(env.central.nb_unix)
    log(f"  all tagged in {tag_last - tag_first:.1f} s; waiting until every NIC is bound")
    bound_at, counts = checker.wait_bound(args.timeout, manager)
    log(f"  all bound {bound_at - tag_last:.1f} s after the last tag")
    # The pass that made the last change logs once it has checked there is nothing left.
    with contextlib.suppress(RuntimeError):
        while True:
            p = manager.wait_for_pass(max(120.0, 3 * max(x.seconds for x in manager.passes)),
                                      after=last_pass)
            last_pass = p.number
            if p.seen_at > bound_at:
                break
    passes = manager.passes[passes_before:]
    cpu = {k: round(v - cpu_before.get(k, 0.0), 1) for k, v in lab.cpu().items()}
    result = {
        "tagging_seconds": round(tag_last - tag_first, 2),
        "all_tagged_to_all_bound_seconds": round(bound_at - tag_last, 2),
        "first_tag_to_all_bound_seconds": round(bound_at - tag_first, 2),
        "bound_counts": dict(counts),
        "all_tagged_to_dvports_confirmed_seconds": round(checker.confirmed_at - tag_last, 2),
        "bound_check_seconds": round(checker.last_check_seconds, 2),
        "vcenter_tasks": sum(p.tasks for p in passes),
        "dvport_edits": sum(p.edits for p in passes),
        "dvport_reconfigured_events": port_events(env.ep) - events_before,
        "nb_transactions": count_txns(nb_log.since(), nb_writer),
        "sb_transactions": count_txns(sb_log.since(), sb_writer),
        "manager_passes": [vars(p) | {"seen_at": None} for p in passes],
        "manager_peak_rss_mb": round(proc_status(manager.pid, "VmHWM") / 1024, 1),
        "manager_cpu_seconds": cpu["manager 1"],
        "cpu_seconds": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "manager_errors": manager.errors[:20],
    }
    manager.stop()
    return result


def cold_resync(args: argparse.Namespace, lab: Lab, env: Env) -> dict[str, Any]:
    """A bare read of the inventory (no manager running), then a manager started again."""
    log("cold resync: a bare read of the inventory, then the manager started again")
    bare = bare_read(env.ep, env.inv)
    nb_log = DbLog(env.central.members[0].dirs.root / "nb.db")
    nb_log.mark()
    events_before = port_events(env.ep)
    manager = ManagerProcess.start(env.config, lab.root / "manager-2.log", env.password,
                                   verbose=True)
    lab.managers.append(manager)
    first = manager.wait_for_pass(args.timeout)
    restart_seconds = time.monotonic() - manager.started
    time.sleep(2)
    manager.poll()
    return {
        "first_pass_seconds": first.seconds,
        "first_pass_rounds": first.rounds,
        "first_pass_acted": first.level != "debug",
        "restart_to_first_pass_end_seconds": round(restart_seconds, 2),
        "nb_transactions": count_txns(nb_log.since(), nb_writer),
        "dvport_reconfigured_events": port_events(env.ep) - events_before,
        "manager_peak_rss_mb": round(proc_status(manager.pid, "VmHWM") / 1024, 1),
        "manager_errors": manager.errors[:20],
        "bare_read": bare,
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and the source files that differed from it."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parent.parent).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "changed": git("status", "--short", "--", "src").splitlines()}


def run_bench(args: argparse.Namespace, lab: Lab) -> dict[str, Any]:
    env = setup(args, lab)
    attached = attach(args, lab, env)
    resync = cold_resync(args, lab, env)
    with Connection(env.ep, verify_tls=False) as vc, NbClient(env.central.nb_unix) as nb:
        final = status(vc, nb, env.settings)
    states = Counter(f"{s.state}: {s.reason}" if s.reason else s.state for s in final)
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "code": code_version(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "hosts": args.hosts,
        "vms": len(env.inv.apps),
        "nics_per_vm": args.nics_per_vm,
        "nics": env.inv.nics,
        "setup": env.timings,
        "bound_means": (
            "logical port on the network with a VLAN unique on the vDS and requested-chassis = "
            "the OVS VM of the VM's host; dvPort with that access VLAN, unblocked; the patch "
            "pair on that OVS VM only (OVN 'up' excluded: no ovn-controller runs)"
        ),
        "attach": attached,
        "cold_resync": resync,
        "final_states": dict(states),
    }


def report(result: dict[str, Any]) -> None:
    a, c, s = result["attach"], result["cold_resync"], result["setup"]
    bare = c["bare_read"]
    print()
    print(f"{result['hosts']} hosts, {result['vms']} VMs x {result['nics_per_vm']} NICs = "
          f"{result['nics']} VM NICs; {result['cpus']} CPUs")
    print(f"setup (not measured): vCenter {s['vcenter_seconds']} s, OVN + nodes "
          f"{s['ovn_and_nodes_seconds']} s, manager's first pass "
          f"{s['manager_first_pass_seconds']} s")
    print(f"tagging every VM: {a['tagging_seconds']} s")
    print(f"all tagged -> all bound: {a['all_tagged_to_all_bound_seconds']} s "
          f"(first tag -> all bound {a['first_tag_to_all_bound_seconds']} s; the check that "
          f"saw it took {a['bound_check_seconds']} s with the dvPort read)")
    print(f"  bound = {result['bound_means']}")
    print(f"vCenter tasks (ReconfigureDVPort_Task): {a['vcenter_tasks']} for "
          f"{a['dvport_edits']} port edits; simulator events: {a['dvport_reconfigured_events']}")
    nb = a["nb_transactions"]
    print(f"OVN NB transactions: {nb['total']}  {nb.get('by', nb.get('note'))}")
    sb = a["sb_transactions"]
    print(f"OVN SB transactions: {sb['total']}  {sb.get('by', sb.get('note'))}")
    print(f"manager: peak RSS {a['manager_peak_rss_mb']} MB, {a['manager_cpu_seconds']} CPU s, "
          f"{len(a['manager_passes'])} passes")
    for p in a["manager_passes"]:
        print(f"  pass {p['number']}: {p['rounds']} rounds {p['seconds']} s, allocated "
              f"{p['allocated']}, dvPorts {p['edits']} in {p['tasks']} tasks, node changes "
              f"{p['node_changes']}, pins {p['pins']}")
    print("CPU seconds from the first tag to the end of the attach:")
    for name, seconds in a["cpu_seconds"].items():
        print(f"  {name:26s} {seconds:7.1f}")
    print(f"cold resync: first pass {c['first_pass_seconds']} s ({c['first_pass_rounds']} "
          f"round, acted: {c['first_pass_acted']}), restart to its end "
          f"{c['restart_to_first_pass_end_seconds']} s; NB transactions "
          f"{c['nb_transactions']['total']}, port events {c['dvport_reconfigured_events']}")
    print(f"  bare pyVmomi read of the same inventory: {bare['pyvmomi_total_seconds']} s "
          f"({bare['vms']} VMs {bare['pyvmomi_retrieve_vms_seconds']} s + {bare['ports']} "
          f"dvPorts {bare['pyvmomi_fetch_dvports_seconds']} s); ovsphere's read "
          f"{bare['ovsphere_total_seconds']} s")
    print(f"final states (ovsphere status): {result['final_states']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--hosts", type=int, default=32)
    parser.add_argument("--nics", type=int, default=4094, help="VM NICs in all (max 4094)")
    parser.add_argument("--nics-per-vm", type=int, default=1, choices=range(1, 11),
                        metavar="1-10")
    parser.add_argument("--workers", type=int, default=4,
                        help="vCenter sessions creating and tagging VMs at once")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds to wait for any one step")
    parser.add_argument("--out", type=Path, default=RESULTS / "attach_scale.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--vswitchd-standin", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vswitchd_standin:
        standin_main(args.vswitchd_standin)
        return
    if not 1 <= args.nics <= 4094:
        parser.error("--nics must be 1-4094 (VLANs of one vDS)")
    with lab(args.keep) as state:
        result = run_bench(args, state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)


if __name__ == "__main__":
    main()
