"""Distributed ports: read them with criteria, change them in batches.

vCenter changes many ports in one ``ReconfigureDVPort_Task``; ovsphere sends
its per-port edits in chunks of :data:`CHUNK` ports, all chunks started before
any is awaited, and fails loudly if any chunk failed.  Each edit carries the
``configVersion`` it was computed from, so a concurrent change by someone else
makes vCenter refuse (``ConcurrentAccess`` -> :class:`~ovsphere.errors.ConflictError`)
instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from ovsphere.model import Connectee, Port, PortEdit
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.specs import setting_from_vim, setting_to_vim
from ovsphere.vsphere.tasks import wait_for_tasks

#: ports per ReconfigureDVPort_Task; vCenter handles hundreds, but a smaller
#: chunk keeps one bad port from failing the whole batch.
CHUNK = 200


@dataclass(frozen=True)
class PortQuery:
    keys: Sequence[str] | None = None
    portgroups: Sequence[str] | None = None
    inside: bool = True
    connected: bool | None = None


def switch_ref(si: Any, moref: str) -> Any:
    return vim.DistributedVirtualSwitch(moref, si._stub)


def port_from_vim(p: Any) -> Port:
    connectee = None
    c = p.connectee
    if c is not None and c.connectedEntity is not None and c.nicKey:
        connectee = Connectee(vm=c.connectedEntity._moId, nic_key=int(c.nicKey))
    return Port(
        key=p.key,
        switch_uuid=p.dvsUuid,
        portgroup_key=p.portgroupKey,
        setting=setting_from_vim(p.config.setting if p.config else None),
        config_version=str(p.config.configVersion or "") if p.config else "",
        connectee=connectee,
        name=(p.config.name or "") if p.config else "",
    )


def fetch_ports(conn: Connection, switch: str, query: PortQuery | None = None) -> list[Port]:
    """The switch's ports matching ``query`` (all ports when None)."""
    q = query or PortQuery()

    def run(si: Any) -> list[Port]:
        criteria = vim.dvs.PortCriteria()
        if q.keys is not None:
            criteria.portKey = list(q.keys)
        if q.portgroups is not None:
            criteria.portgroupKey = list(q.portgroups)
            criteria.inside = q.inside
        if q.connected is not None:
            criteria.connected = q.connected
        return [port_from_vim(p) for p in switch_ref(si, switch).FetchDVPorts(criteria)]

    return conn.call(f"read the ports of switch {switch}", run)


def _chunks(items: Sequence[PortEdit], size: int) -> Iterable[Sequence[PortEdit]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def reconfigure_ports(
    conn: Connection, switch: str, edits: Sequence[PortEdit], *, chunk: int = CHUNK
) -> int:
    """Apply ``edits`` in batched tasks; return how many tasks it took."""
    if not edits:
        return 0

    def run(si: Any) -> int:
        dvs = switch_ref(si, switch)
        tasks = []
        for part in _chunks(edits, chunk):
            specs = [
                vim.dvs.DistributedVirtualPort.ConfigSpec(
                    operation="edit",
                    key=e.key,
                    name=e.name,
                    configVersion=e.config_version,
                    setting=setting_to_vim(e.setting),
                )
                for e in part
            ]
            tasks.append(dvs.ReconfigureDVPort_Task(specs))
        wait_for_tasks(si, tasks, f"reconfigure {len(edits)} ports on switch {switch}")
        return len(tasks)

    return conn.call(f"reconfigure ports on switch {switch}", run)
