"""A VM's vNICs: moving one onto a distributed port group, and the vMotions under way.

:func:`move_nic` re-backs one existing vNIC (``ReconfigVM_Task``, device
``edit``) with a port of a distributed port group.  The whole device as read
from vCenter goes back with only its backing changed, so the NIC keeps its
device key, MAC and connection state; the backing names the switch and port
group but no port, so vCenter binds a free port of a static port group (and
grows it if autoExpand is on).  The spec carries the VM's ``changeVersion``
(when vCenter reports one), so a concurrent reconfiguration makes vCenter
refuse instead of one change silently undoing the other.

:func:`migrations_in_progress` answers, after a restart of the manager, which
vMotions are still under way, from where and to where: vCenter's recent
tasks say which ``MigrateVM_Task`` / ``RelocateVM_Task`` still run, and the
newest "being migrated" event for the VM since its task was queued names the
source and destination hosts (a task does not carry its arguments, and the
VM's own host changes half way).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pyVmomi import vim, vmodl

from ovsphere.errors import NotFoundError
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.tasks import wait_for_tasks

PC = vmodl.query.PropertyCollector
DVPORT_BACKING = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo

#: events vCenter posts when a VM starts moving to another host; each has ``destHost``
ANNOUNCEMENTS = ("VmBeingHotMigratedEvent", "VmBeingMigratedEvent", "VmBeingRelocatedEvent")
#: a vMotion task's ``info.name`` (WSDL method name, or the vmodl name)
_MIGRATION_METHODS = frozenset(
    {
        "MigrateVM_Task",
        "RelocateVM_Task",
        "vim.VirtualMachine.migrate",
        "vim.VirtualMachine.relocate",
    }
)
#: a vMotion task's ``info.descriptionId`` (DRS moves run as Drm.ExecuteVMotionLRO)
_MIGRATION_DESCRIPTIONS = frozenset(
    {"VirtualMachine.migrate", "VirtualMachine.relocate", "Drm.ExecuteVMotionLRO"}
)
_UNDER_WAY = ("running", "queued")


def move_nic(
    conn: Connection, vm_moref: str, nic_key: int, switch_uuid: str, portgroup_key: str
) -> None:
    """Put NIC ``nic_key`` of VM ``vm_moref`` on port group ``portgroup_key`` of the switch.

    A no-op when the NIC already is on that port group.  The NIC keeps its
    device key and MAC; on a static (earlyBinding) port group vCenter gives
    it a free port.  Raises :class:`~ovsphere.errors.NotFoundError` for an
    unknown VM or NIC key, and the translated fault when vCenter refuses.
    """
    action = f"move NIC {nic_key} of VM {vm_moref} to port group {portgroup_key}"

    def run(si: Any) -> None:
        vm = vim.VirtualMachine(vm_moref, si._stub)
        props = _read_vm(si, vm)
        name = props.get("name") or vm_moref
        devices = props.get("config.hardware.device") or []
        nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        nic = next((d for d in nics if d.key == nic_key), None)
        if nic is None:
            have = ", ".join(str(d.key) for d in nics) or "none"
            raise NotFoundError(
                f"VM {name} ({vm_moref}) has no network adapter with key {nic_key} "
                f"(its adapters: {have})",
                fix="re-read the inventory; the NIC may have been removed or replaced",
            )
        if _on_portgroup(nic, switch_uuid, portgroup_key):
            return
        nic.backing = DVPORT_BACKING(
            port=vim.dvs.PortConnection(switchUuid=switch_uuid, portgroupKey=portgroup_key)
        )
        spec = vim.vm.ConfigSpec(
            deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)]
        )
        if props.get("config.changeVersion"):
            spec.changeVersion = props["config.changeVersion"]
        task = vm.ReconfigVM_Task(spec)
        wait_for_tasks(si, [task], f"move NIC {nic_key} of VM {name} to port group {portgroup_key}")

    conn.call(action, run)


def _read_vm(si: Any, vm: Any) -> dict[str, Any]:
    """The VM's name, devices and changeVersion; NotFoundError if vCenter has no such VM."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vm, skip=False)],
        propSet=[
            PC.PropertySpec(
                type=vim.VirtualMachine,
                pathSet=["name", "config.hardware.device", "config.changeVersion"],
            )
        ],
    )
    try:
        result = si.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    except vmodl.fault.ManagedObjectNotFound:
        result = None
    objects = result.objects if result is not None else []
    if not objects:
        raise NotFoundError(
            f"vCenter has no VM {vm._moId}",
            fix="re-read the inventory; the VM may have been removed or re-registered",
        )
    return {p.name: p.val for p in objects[0].propSet or ()}


def _on_portgroup(nic: Any, switch_uuid: str, portgroup_key: str) -> bool:
    backing = nic.backing
    if not isinstance(backing, DVPORT_BACKING) or backing.port is None:
        return False
    return bool(
        backing.port.switchUuid == switch_uuid and backing.port.portgroupKey == portgroup_key
    )


Hosts = tuple[str | None, str | None]


def migrations_in_progress(conn: Connection) -> dict[str, Hosts]:
    """VM moref -> (source, destination) host morefs of every vMotion running or queued.

    Both are None while vCenter has not announced the move yet (a queued
    task, or a running one whose "being migrated" event is not posted yet).
    A VM whose vMotion ended (succeeded or failed) is absent.
    """
    return conn.call("read the vMotions in progress", _migrations)


def _migrations(si: Any) -> dict[str, Hosts]:
    # Per VM, the task that started first: vCenter runs one move of a VM at a
    # time, so a second one is queued behind it.
    first: dict[str, dict[str, Any]] = {}
    for info in _recent_tasks(si):
        entity = info.get("info.entity")
        if info.get("info.state") not in _UNDER_WAY or not isinstance(entity, vim.VirtualMachine):
            continue
        if not _is_migration(info.get("info.name"), info.get("info.descriptionId")):
            continue
        vm = entity._moId
        if vm not in first or _order(info) < _order(first[vm]):
            first[vm] = info
    return {vm: _announced(si, info["info.entity"], _since(info)) for vm, info in first.items()}


def _recent_tasks(si: Any) -> Iterator[dict[str, Any]]:
    """The properties of TaskManager.recentTask, read in one pass through a traversal."""
    content = si.content
    traverse = PC.TraversalSpec(name="recent", type=vim.TaskManager, path="recentTask", skip=False)
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.taskManager, skip=True, selectSet=[traverse])],
        propSet=[
            PC.PropertySpec(
                type=vim.Task,
                pathSet=[
                    "info.state",
                    "info.name",
                    "info.descriptionId",
                    "info.entity",
                    "info.queueTime",
                    "info.startTime",
                ],
            )
        ],
    )
    pc = content.propertyCollector
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1000))
    while result is not None:
        for obj in result.objects:
            yield {p.name: p.val for p in obj.propSet or ()}
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)


def _is_migration(name: Any, description: Any) -> bool:
    info = getattr(name, "info", None)  # a pyVmomi ManagedMethod
    method = getattr(info, "wsdlName", None) or getattr(name, "name", None) or str(name or "")
    return method in _MIGRATION_METHODS or str(description or "") in _MIGRATION_DESCRIPTIONS


def _since(info: dict[str, Any]) -> datetime | None:
    """When the task was queued (vCenter's clock, as are the events' times)."""
    when = info.get("info.queueTime") or info.get("info.startTime")
    return when if isinstance(when, datetime) else None


def _order(info: dict[str, Any]) -> tuple[bool, float]:
    since = _since(info)
    return (since is None, since.timestamp() if since else 0.0)


def _announced(si: Any, vm: Any, since: datetime | None) -> Hosts:
    """(host, destHost) of the newest announcement of a move of ``vm`` since ``since``."""
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=list(ANNOUNCEMENTS),
    )
    if since is not None:
        spec.time = vim.event.EventFilterSpec.ByTime(beginTime=since)
    # A collector's latest page holds the newest matching events.
    collector = si.content.eventManager.CreateCollectorForEvents(spec)
    try:
        page = list(collector.latestPage or ())
    finally:
        collector.DestroyCollector()
    found = [
        e
        for e in page
        if getattr(e, "destHost", None) is not None
        and (since is None or e.createdTime >= since)
    ]
    if not found:
        return None, None
    newest = max(found, key=lambda e: (e.createdTime, e.key))
    source = newest.host.host._moId if getattr(newest, "host", None) else None
    return source, str(newest.destHost.host._moId)
