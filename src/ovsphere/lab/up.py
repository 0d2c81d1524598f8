"""``ovsphere lab up``: build the emulated datacenter a topology describes.

The lab lives in one long-running process, the agent (``ovsphere lab agent``),
which ``up`` starts first and records first (so ``down`` ends it last).  The
agent makes itself the child subreaper of everything it starts, so the
daemons it detaches remain its descendants and are reaped when they end,
instead of lingering as zombies under an init that does not reap.

The agent builds (:func:`build`): the simulator and its inventory first
(everything else follows vCenter), then the fabric and OVN central, the ESX
hosts' proxy switches, the OVS VMs and KVM hosts and the VMs' namespaces; then
it wires every vNIC from what vCenter says and loads the proxy switches' flows
(:mod:`ovsphere.lab.agent`).  ``up`` prints the agent's progress and returns
once its first pass is done, so a returned ``up`` is a working lab.

Idempotent: a lab that is up is left as it is; the remains of a failed one are
removed first.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ovsphere.config import VCenterEndpoint
from ovsphere.errors import SetupError
from ovsphere.lab import nodes
from ovsphere.lab.daemons import is_running
from ovsphere.lab.down import down
from ovsphere.lab.layout import Layout
from ovsphere.lab.simulator import Simulator, SimulatorOptions, build_simulator
from ovsphere.lab.state import LabState, ProcessRecord
from ovsphere.lab.topology import Topology
from ovsphere.lab.vcenter_setup import build_inventory
from ovsphere.vsphere.connection import Connection

SIM_USER = "ovsphere"
UP_TIMEOUT = 300


@dataclass(frozen=True)
class UpReport:
    name: str
    seconds: float
    already_up: bool
    vcenter_url: str
    state_dir: Path


def endpoint(state: LabState) -> VCenterEndpoint:
    """How to reach the lab's vCenter (credentials from the root-only state file)."""
    info = state.record.info
    return VCenterEndpoint(
        host="127.0.0.1",
        port=int(info["vcenter_port"]),
        user=SIM_USER,
        password=SecretStr(info["vcenter_password"]),
    )


def healthy(state: LabState) -> bool:
    procs = state.record.processes
    return (
        bool(procs)
        and all(is_running(p) for p in procs)
        and state.record.info.get("complete") is True
    )


def up(topology: Topology, *, log: Callable[[str], None] = print) -> UpReport:
    """Start the agent that builds the lab; follow its progress until it is up."""
    start = time.monotonic()
    if os.geteuid() != 0:
        raise SetupError("the lab needs root (network namespaces, veths)", fix="run it as root")
    state = LabState(topology.name)
    if state.exists:
        if healthy(state):
            return UpReport(
                topology.name,
                time.monotonic() - start,
                True,
                f"https://127.0.0.1:{state.record.info['vcenter_port']}/sdk",
                state.dir,
            )
        log(f"removing the remains of lab {topology.name} first")
        down(state)
        state = LabState(topology.name)
    state.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state.dir, 0o700)  # the state file will hold the simulator's password
    state.set_info(topology=json.loads(topology.model_dump_json()), complete=False)

    agent_log = open(state.dir / "agent.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovsphere", "lab", "agent", "--name", topology.name, "--build"],
        stdin=subprocess.DEVNULL,
        stdout=agent_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    agent_log.close()
    # The name the kernel shows once the child has exec'd (not /proc/PID/comm now:
    # right after fork it still shows ours).
    state.add_process(ProcessRecord("lab/agent", proc.pid, Path(sys.executable).name))

    status_path = state.dir / "agent.json"
    shown = 0
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        status = _read_status(status_path)
        for line in status.get("progress", [])[shown:]:
            log(line)
            shown += 1
        if status.get("error"):
            raise SetupError(
                f"lab up failed: {status['error']}",
                fix=f"read {state.dir / 'agent.log'}; `ovsphere lab down --name "
                f"{topology.name}` removes what was made",
            )
        if status.get("generation", 0) >= 1:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SetupError(
                f"the lab agent {'ended' if proc.poll() is not None else 'hung'} "
                "before the lab was up",
                fix=f"read {state.dir / 'agent.log'}",
            )
        time.sleep(0.05)
    state = LabState(topology.name)
    state.set_info(complete=True)
    return UpReport(
        topology.name,
        time.monotonic() - start,
        False,
        f"https://127.0.0.1:{state.record.info['vcenter_port']}/sdk",
        state.dir,
    )


def _read_status(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def build(layout: Layout, state: LabState, log: Callable[[str], None]) -> Simulator:
    """Make every node of the lab (run by the agent, which is their ancestor)."""
    topology = layout.topology
    log("vCenter: building and starting the simulator")
    binary = build_simulator()
    password = secrets.token_urlsafe(12)
    sim = Simulator.start(
        SimulatorOptions(
            hosts=len(topology.hosts),
            clusters=1,
            vms=0,
            user=SIM_USER,
            password=password,
            precopy=topology.precopy,
        ),
        binary=binary,
        log_path=state.dir / "vcsim.log",
    )
    state.add_process(ProcessRecord("vcenter/vcsim", sim.pid, binary.name))
    state.set_info(vcenter_port=sim.port, vcenter_password=password)
    with Connection(endpoint(state), verify_tls=False) as conn:
        log("vCenter: hosts, vDS, isolated port groups, OVS VMs and VMs")
        build_inventory(conn, layout)

    log("fabric and OVN central")
    nodes.fabric(layout, state)
    central = nodes.central(layout, state)
    state.set_info(
        nb=central.nb_unix, sb=central.sb_unix, nb_tcp=central.nb_tcp, sb_tcp=central.sb_tcp
    )
    for host in topology.hosts:
        log(f"ESX host {host}: proxy switch; OVS VM {layout.ovs_vm(host)}")
        nodes.esx_host(layout, state, host)
        nodes.transport_node(layout, state, layout.ovs_vm(host))
    for vm in topology.vms:
        nodes.vm_namespace(layout, state, vm.name)
    for k in topology.kvm:
        log(f"KVM host {k.name}")
        nodes.transport_node(layout, state, k.name, kvm=True)
        for i, guest in enumerate(k.vms):
            index = layout.transport_nodes.index(k.name)
            mac = guest.mac or f"52:54:00:{index:02x}:00:{i + 1:02x}"
            nodes.kvm_vm(layout, state, k.name, guest.name, mac)
    log("wiring vNICs and loading proxy-switch flows from vCenter")
    return sim
