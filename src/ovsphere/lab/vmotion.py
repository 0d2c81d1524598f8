"""``ovsphere lab vmotion``: a vMotion through vCenter, as an operator starts one."""

from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim

from ovsphere.errors import NotFoundError
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
