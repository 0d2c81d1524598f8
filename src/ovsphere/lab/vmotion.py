"""``ovsphere lab vmotion``: a vMotion through vCenter, as an operator starts one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pyVmomi import vim

from ovsphere.errors import NotFoundError, SetupError
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.tasks import wait_for_tasks


def migrate(conn: Connection, vm_name: str, host_name: str) -> float:
    """MigrateVM_Task ``vm_name`` to ``host_name``; return the seconds it took."""
    inv = read_inventory(conn)
    vm = next((v for v in inv.vms if v.name == vm_name), None)
    host = next((h for h in inv.hosts if h.name == host_name), None)
    if vm is None:
        raise NotFoundError(f"vCenter has no VM {vm_name!r}", fix="see `ovsphere inventory`")
    if host is None:
        names = ", ".join(h.name for h in inv.hosts)
        raise NotFoundError(f"vCenter has no host {host_name!r}", fix=f"one of: {names}")
    start = time.monotonic()

    def run(si: Any) -> None:
        task = vim.VirtualMachine(vm.moref, si._stub).MigrateVM_Task(
            host=vim.HostSystem(host.moref, si._stub), priority="defaultPriority"
        )
        wait_for_tasks(si, [task], f"migrate {vm_name} to {host_name}")

    conn.call(f"migrate {vm_name} to {host_name}", run)
    return time.monotonic() - start


def migrate_many(conn: Connection, moves: dict[str, str]) -> float:
    """Start a MigrateVM_Task for every VM name -> host name at once, wait for all."""
    inv = read_inventory(conn)
    vms = {v.name: v.moref for v in inv.vms}
    hosts = {h.name: h.moref for h in inv.hosts}
    missing = [n for n in moves if n not in vms] + [h for h in moves.values() if h not in hosts]
    if missing:
        raise NotFoundError(f"vCenter has no VM or host {', '.join(missing)}")
    start = time.monotonic()

    def run(si: Any) -> None:
        tasks = [
            vim.VirtualMachine(vms[vm], si._stub).MigrateVM_Task(
                host=vim.HostSystem(hosts[host], si._stub), priority="defaultPriority"
            )
            for vm, host in moves.items()
        ]
        wait_for_tasks(si, tasks, f"migrate {len(tasks)} VMs")

    conn.call(f"migrate {len(moves)} VMs", run)
    return time.monotonic() - start


def wait_for_move(state_dir: Path, vm_name: str, host_name: str, timeout: float = 30) -> float:
    """Wait until the lab agent has moved every vNIC of the VM to ``host_name``."""
    start = time.monotonic()
    path = state_dir / "wiring.json"
    while time.monotonic() - start < timeout:
        try:
            wires = [w for w in json.loads(path.read_text()).values() if w["vm"] == vm_name]
        except (FileNotFoundError, json.JSONDecodeError):
            wires = []
        if wires and all(w["host"] == host_name for w in wires):
            return time.monotonic() - start
        time.sleep(0.02)
    raise SetupError(f"the lab did not move {vm_name}'s links to {host_name} in {timeout:.0f} s",
                     fix=f"read {state_dir / 'agent.log'}")
