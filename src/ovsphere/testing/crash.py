"""Crash-consistency testing: managers killed at a named step, and what "converged" means.

:class:`ManagerProcess` runs ``ovsphere manager run`` against a lab with
``OVSPHERE_CRASH_AT`` set (it dies at that point, exit status
:data:`~ovsphere.manager.faults.CRASH_EXIT`) or unset (it runs until
stopped).  Every process is recorded in the lab's state, so ``lab down``
ends it even when a test fails half way.

:func:`check_converged` reads vCenter, the NB and every OVS VM directly (not
through the planner it checks) and lists what is wrong: a VLAN held twice, a
VLAN passing on a dvPort it does not belong to, a logical port without its
NIC or a NIC without its port, a patch on the wrong OVS VM, a port pinned to
the wrong chassis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ovsphere.lab.manager import lab_settings, manager_argv
from ovsphere.lab.manual import LabControl
from ovsphere.lab.state import LabState, ProcessRecord
from ovsphere.manager import faults
from ovsphere.manager.desired import passes
from ovsphere.manager.snapshot import managed_switches
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.ports import read_ports
from ovsphere.vsphere.ports import PortQuery, fetch_ports


class ManagerProcess:
    def __init__(
        self,
        lab: LabControl,
        label: str,
        crash_at: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if crash_at is not None and crash_at not in faults.POINTS:
            raise ValueError(f"unknown crash point {crash_at!r}")
        state = LabState(lab.state.name)
        self.log = state.dir / f"{label}.log"
        env = {k: v for k, v in os.environ.items() if k != faults.ENV} | dict(env or {})
        if crash_at:
            env[faults.ENV] = crash_at
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                manager_argv(state.name),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        state.add_process(ProcessRecord(f"lab/{label}", self.proc.pid, "python"))

    def wait_for_crash(self, timeout: float = 60) -> None:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"the manager never reached its crash point: {_tail(self.log)}"
            ) from None
        assert code == faults.CRASH_EXIT, f"exit {code}, not a crash point: {_tail(self.log)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Observed:
    problems: list[str] = field(default_factory=list)
    bound: dict[str, int] = field(default_factory=dict)  # VM name -> VLAN


def check_converged(lab: LabControl, attached: Mapping[str, str]) -> Observed:
    """What is wrong, with ``attached`` (VM name -> network) the NICs that should be bound."""
    settings = lab_settings(lab.state)
    out = Observed()
    inv = lab.inventory()
    vms = {v.instance_uuid: v for v in inv.vms}
    hosts = {h.moref: h.name for h in inv.hosts}
    with NbClient(settings.require_nb()) as nb, nb.connection.lock:
        lports = read_ports(nb)
    seen: dict[tuple[str, int], str] = {}
    for lp in lports:
        if (lp.vds, lp.vlan) in seen:
            out.problems.append(f"VLAN {lp.vlan} held by {seen[(lp.vds, lp.vlan)]} and {lp.name}")
        seen[(lp.vds, lp.vlan)] = lp.name
        vm = vms.get(lp.vm)
        if vm is None or attached.get(vm.name) != lp.network:
            out.problems.append(f"port {lp.name} ({lp.vm_name}, {lp.network}) should be gone")
            continue
        out.bound[vm.name] = lp.vlan
        want = (f"ovs-{hosts.get(vm.host or '', '?')}",)
        if lp.requested_chassis != want or lp.activation is not None:
            out.problems.append(
                f"port {lp.name}: requested-chassis {lp.requested_chassis}, activation "
                f"{lp.activation}; want {want}, none"
            )
    for name in attached.keys() - out.bound.keys():
        out.problems.append(f"{name} has no logical port")

    nic_port = {
        (vm.instance_uuid, nic.key): nic.backing.port_key for vm in inv.vms for nic in vm.nics
    }
    by_port = {(lp.vds, nic_port.get((lp.vm, lp.nic))): lp.vlan for lp in lports}
    ovs_vms = {v.moref for v in inv.vms if v.name in lab.layout.ovs_vms}
    with lab.connection() as conn:
        for sw in managed_switches(inv, settings):
            moref = next(s.moref for s in inv.switches if s.uuid == sw.uuid)
            for port in fetch_ports(conn, moref, PortQuery(portgroups=[sw.portgroup])):
                vlan = passes(port.setting)
                want_vlan = by_port.get((sw.uuid, port.key))
                trunk = port.connectee is not None and port.connectee.vm in ovs_vms
                if not trunk and vlan != want_vlan:
                    out.problems.append(
                        f"dvPort {port.key} passes VLAN {vlan}, should pass {want_vlan}"
                    )

    for node in lab.layout.ovs_vms:
        host = node.removeprefix("ovs-")
        ifaces = lab.run(
            node, "ovs-vsctl", "--bare", "--columns=external_ids", "list", "interface"
        ).stdout
        patched = {w.split("=", 1)[1] for w in ifaces.split() if w.startswith("iface-id=")}
        expected = {
            lp.name for lp in lports if lp.vm in vms and hosts.get(vms[lp.vm].host or "") == host
        }
        if patched != expected:
            out.problems.append(
                f"{node} patches {sorted(patched)}, should patch {sorted(expected)}"
            )
    return out


def wait_converged(lab: LabControl, attached: Mapping[str, str], timeout: float = 45) -> Observed:
    deadline = time.monotonic() + timeout
    while True:
        got = check_converged(lab, attached)
        if not got.problems or time.monotonic() > deadline:
            return got
        time.sleep(0.5)
