"""``ovsphere lab up``: build the emulated datacenter a topology describes.

Order: the simulator and its inventory first (everything else follows
vCenter), then the fabric and OVN central, the ESX hosts' proxy switches, the
OVS VMs and KVM hosts, the VMs' namespaces, and last the agent, which wires
every vNIC from what vCenter says and loads the proxy switches' flows.
``up`` waits for the agent's first pass, so a returned ``up`` is a working
lab.  Idempotent: a lab that is up is left as it is; the remains of a failed
one are removed first.
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

from pydantic import SecretStr

from ovsphere.config import VCenterEndpoint
from ovsphere.errors import SetupError
from ovsphere.lab import nodes
from ovsphere.lab.agent import wait_for_agent
from ovsphere.lab.daemons import is_running, program_of
from ovsphere.lab.down import down
from ovsphere.lab.layout import Layout
from ovsphere.lab.simulator import Simulator, SimulatorOptions, build_simulator
from ovsphere.lab.state import LabState, ProcessRecord
from ovsphere.lab.topology import Topology
from ovsphere.lab.vcenter_setup import build_inventory
from ovsphere.vsphere.connection import Connection

SIM_USER = "ovsphere"


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
    return (
        bool(state.record.processes)
        and all(is_running(p) for p in state.record.processes)
        and state.record.info.get("complete") is True
    )


def up(topology: Topology, *, log: Callable[[str], None] = print) -> UpReport:
    start = time.monotonic()
    if os.geteuid() != 0:
        raise SetupError("the lab needs root (network namespaces, veths)", fix="run it as root")
    layout = Layout(topology)
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
    os.chmod(state.dir, 0o700)  # the state file holds the simulator's password
    state.set_info(topology=json.loads(topology.model_dump_json()), complete=False)

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
    state.add_process(ProcessRecord("vcenter/vcsim", sim.pid, program_of(sim.pid)))
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

    log("agent: wiring vNICs and loading proxy-switch flows from vCenter")
    agent_log = open(state.dir / "agent.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovsphere", "lab", "agent", "--name", topology.name],
        stdin=subprocess.DEVNULL,
        stdout=agent_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    agent_log.close()
    state.add_process(ProcessRecord("lab/agent", proc.pid, program_of(proc.pid)))
    status = wait_for_agent(state.dir, alive=lambda: proc.poll() is None)
    if status.get("error"):
        raise SetupError(
            f"the lab agent failed: {status['error']}", fix=f"read {state.dir / 'agent.log'}"
        )
    state.set_info(complete=True)
    return UpReport(
        topology.name,
        time.monotonic() - start,
        False,
        f"https://127.0.0.1:{sim.port}/sdk",
        state.dir,
    )
