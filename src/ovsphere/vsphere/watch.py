"""A typed stream of the vSphere changes ovsphere reacts to.

Three sources on one PropertyCollector of the watcher's own:

- every VirtualMachine's name, host, power state, devices and custom values,
  through a ContainerView, turned into :class:`VmAdded`, :class:`HostChanged`,
  :class:`NicAdded` ... by diffing against the last state seen;
- every distributed port group's ``config`` (:class:`PortgroupChanged`);
- an EventHistoryCollector's ``latestPage`` for the events that carry what
  state does not (a migration announced before it happens, a port
  reconfigured), de-duplicated by event key.  (``ReadNextEvents`` misses events
  on the simulator; ``latestPage`` through the collector does not.)

When vCenter goes away (restart, network, expired session) the watcher logs in
again with back-off, rebuilds its collectors, diffs the fresh state against
what it had and emits those differences followed by :class:`Resynced`, so a
consumer misses no state change, only the events posted during the outage.

A Watcher owns its Connection and is used from one thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from ovsphere.errors import OvsphereError
from ovsphere.model import Nic, PowerState, VirtualMachine
from ovsphere.vsphere.collector import PC, container_filter
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.faults import translate
from ovsphere.vsphere.inventory import VM_PATHS, vm_from_props

log = logging.getLogger(__name__)

EVENT_TYPES = [
    "VmBeingHotMigratedEvent",
    "VmMigratedEvent",
    "VmFailedMigrateEvent",
    "DvsPortReconfiguredEvent",
]
EVENT_PAGE = 200
#: faults after which the watcher logs in again instead of giving up
_RECONNECT = (
    vim.fault.NotAuthenticated,
    vmodl.fault.ManagedObjectNotFound,
    vmodl.fault.HostCommunication,
    vmodl.fault.SystemError,
)


@dataclass(frozen=True)
class VmAdded:
    vm: VirtualMachine


@dataclass(frozen=True)
class VmRemoved:
    vm: VirtualMachine


@dataclass(frozen=True)
class HostChanged:
    vm: VirtualMachine
    old_host: str | None
    new_host: str | None


@dataclass(frozen=True)
class PowerChanged:
    vm: VirtualMachine
    old: PowerState
    new: PowerState


@dataclass(frozen=True)
class NicAdded:
    vm: VirtualMachine
    nic: Nic


@dataclass(frozen=True)
class NicRemoved:
    vm: VirtualMachine
    nic: Nic


@dataclass(frozen=True)
class NicRebacked:
    vm: VirtualMachine
    old: Nic
    new: Nic


@dataclass(frozen=True)
class VmChanged:
    """Name or custom attributes changed."""

    vm: VirtualMachine


@dataclass(frozen=True)
class PortReconfigured:
    switch: str  # moref
    port_keys: tuple[str, ...]
    event_key: int


@dataclass(frozen=True)
class PortgroupChanged:
    """A port group was created, reconfigured or removed (its policy, teaming ...)."""

    portgroup: str  # moref
    kind: str  # "enter", "modify" or "leave"


@dataclass(frozen=True)
class MigrationStarted:
    vm: str
    source_host: str | None
    dest_host: str | None
    event_key: int


@dataclass(frozen=True)
class MigrationDone:
    vm: str
    source_host: str | None
    dest_host: str | None
    event_key: int


@dataclass(frozen=True)
class MigrationFailed:
    vm: str
    source_host: str | None
    dest_host: str | None
    reason: str
    event_key: int


@dataclass(frozen=True)
class Resynced:
    """The watcher reconnected; everything before this was re-diffed."""

    reason: str


Change = (
    VmAdded
    | VmRemoved
    | HostChanged
    | PowerChanged
    | NicAdded
    | NicRemoved
    | NicRebacked
    | VmChanged
    | PortgroupChanged
    | PortReconfigured
    | MigrationStarted
    | MigrationDone
    | MigrationFailed
    | Resynced
)


def diff_vm(old: VirtualMachine | None, new: VirtualMachine | None) -> list[Change]:
    """The changes that turn ``old`` into ``new`` (either may be absent)."""
    if old is None and new is None:
        return []
    if old is None:
        assert new is not None
        return [VmAdded(new)]
    if new is None:
        return [VmRemoved(old)]
    out: list[Change] = []
    if old.host != new.host:
        out.append(HostChanged(new, old.host, new.host))
    if old.power_state != new.power_state:
        out.append(PowerChanged(new, old.power_state, new.power_state))
    before = {n.key: n for n in old.nics}
    after = {n.key: n for n in new.nics}
    for key in sorted(after.keys() - before.keys()):
        out.append(NicAdded(new, after[key]))
    for key in sorted(before.keys() - after.keys()):
        out.append(NicRemoved(new, before[key]))
    for key in sorted(before.keys() & after.keys()):
        if before[key] != after[key]:
            out.append(NicRebacked(new, before[key], after[key]))
    if (old.name, old.attributes) != (new.name, new.attributes):
        out.append(VmChanged(new))
    return out


def _ref(arg: Any, attr: str) -> str | None:
    inner = getattr(arg, attr, None) if arg is not None else None
    return inner._moId if inner is not None else None


def change_from_event(ev: Any) -> Change | None:
    key = int(ev.key)
    vm = _ref(getattr(ev, "vm", None), "vm")
    if isinstance(ev, vim.event.VmBeingHotMigratedEvent) and vm:
        return MigrationStarted(vm, _ref(ev.host, "host"), _ref(ev.destHost, "host"), key)
    if isinstance(ev, vim.event.VmMigratedEvent) and vm:
        return MigrationDone(vm, _ref(ev.sourceHost, "host"), _ref(ev.host, "host"), key)
    if isinstance(ev, vim.event.VmFailedMigrateEvent) and vm:
        fault = getattr(ev, "reason", None)
        reason = str(getattr(fault, "localizedMessage", "") or "")
        if not reason and fault is not None:
            reason = type(getattr(fault, "fault", fault)).__name__.rsplit(".", 1)[-1]
        return MigrationFailed(vm, _ref(ev.host, "host"), _ref(ev.destHost, "host"), reason, key)
    if isinstance(ev, vim.event.DvsPortReconfiguredEvent):
        return PortReconfigured(_ref(ev.dvs, "dvs") or "", tuple(ev.portKey or ()), key)
    return None


class Watcher:
    def __init__(
        self,
        conn: Connection,
        *,
        max_wait: int = 5,
        retry: float = 1.0,
        max_retry: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.max_wait = max_wait
        self.retry = retry
        self.max_retry = max_retry
        self._clock = clock
        self._vms: dict[str, VirtualMachine] = {}
        self._fields: dict[int, str] = {}
        self._seen_events: set[int] = set()
        self._collector: Any = None
        self._objects: list[Any] = []
        self._version = ""
        self._started = False

    # -- setup ----------------------------------------------------------------
    def _open(self, si: Any) -> None:
        content = si.content
        pc = content.propertyCollector.CreatePropertyCollector()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        events = content.eventManager.CreateCollectorForEvents(
            vim.event.EventFilterSpec(eventTypeId=EVENT_TYPES)
        )
        events.SetCollectorPageSize(EVENT_PAGE)
        pg_view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True
        )
        pc.CreateFilter(
            container_filter(pg_view, vim.dvs.DistributedVirtualPortgroup, ["config"]),
            partialUpdates=False,
        )
        # partialUpdates=False: a changed device list arrives whole, never as a sub-path.
        pc.CreateFilter(container_filter(view, vim.VirtualMachine, VM_PATHS), partialUpdates=False)
        pc.CreateFilter(
            PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=events)],
                propSet=[
                    PC.PropertySpec(type=vim.event.EventHistoryCollector, pathSet=["latestPage"])
                ],
            ),
            partialUpdates=False,
        )
        self._fields = {f.key: f.name for f in content.customFieldsManager.field or ()}
        self._collector, self._objects, self._version = pc, [view, pg_view, events], ""

    def close(self) -> None:
        """Free the collectors on vCenter (the Connection stays open)."""
        for obj in [self._collector, *self._objects]:
            try:
                if isinstance(obj, vim.event.EventHistoryCollector):
                    obj.DestroyCollector()
                elif obj is not None:
                    obj.Destroy()
            except (vmodl.MethodFault, OSError) as exc:  # session gone: nothing left to free
                log.debug("destroying watch object failed: %s", exc.__class__.__name__)
        self._collector, self._objects = None, []

    # -- the stream -----------------------------------------------------------
    def changes(self, *, until: Callable[[], bool] = lambda: False) -> Iterator[Change]:
        """Yield changes until ``until()`` is true (checked every ``max_wait`` s)."""
        for batch in self.batches(until=until):
            yield from batch

    def batches(self, *, until: Callable[[], bool] = lambda: False) -> Iterator[list[Change]]:
        """Yield the changes of each round trip to vCenter together (maybe none).

        For consumers that act once per burst (a reconciler) rather than per change.
        """
        delay = self.retry
        while not until():
            try:
                batch: list[Change] = []
                if self._collector is None:
                    batch.extend(self._resync())
                    delay = self.retry
                batch.extend(self._poll())
            except (vmodl.MethodFault, OSError, ConnectionError, OvsphereError) as exc:
                err = exc if isinstance(exc, OvsphereError) else translate(exc, "watch vCenter")
                if isinstance(exc, vmodl.MethodFault) and not isinstance(exc, _RECONNECT):
                    raise err from exc
                log.warning("vCenter watch interrupted; reconnecting in %.1f s: %s", delay, err)
                self._collector, self._objects = None, []
                deadline = self._clock() + delay
                while self._clock() < deadline and not until():
                    time.sleep(min(0.2, delay))
                delay = min(delay * 2, self.max_retry)
                continue
            yield batch

    def _resync(self) -> Iterator[Change]:
        first = not self._started
        if not first:
            self.conn.relogin()
        si = self.conn.si
        self._open(si)
        update = self._collector.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0))
        fresh: dict[str, VirtualMachine] = {}
        events: list[Any] = []
        while update is not None:
            self._version = update.version
            for fs in update.filterSet:
                for obj in fs.objectSet:
                    if isinstance(obj.obj, vim.VirtualMachine):
                        props = {c.name: c.val for c in obj.changeSet}
                        if "name" in props:
                            fresh[obj.obj._moId] = vm_from_props(obj.obj._moId, props, self._fields)
                    elif isinstance(obj.obj, vim.event.EventHistoryCollector):
                        events.extend(self._page(obj))
            if not update.truncated:
                break
            update = self._collector.WaitForUpdatesEx(
                self._version, PC.WaitOptions(maxWaitSeconds=0)
            )
        # Events already on the page happened before we looked: they are history.
        self._seen_events.update(int(e.key) for e in events)
        old = self._vms
        self._vms = fresh
        self._started = True
        if first:
            return
        for moref in sorted(old.keys() | fresh.keys()):
            yield from diff_vm(old.get(moref), fresh.get(moref))
        yield Resynced("reconnected to vCenter")

    @property
    def vms(self) -> dict[str, VirtualMachine]:
        """The VMs as last seen (after the first change or resync)."""
        return dict(self._vms)

    def _page(self, obj: Any) -> list[Any]:
        return [e for c in obj.changeSet for e in (c.val or ())]

    def _poll(self) -> Iterator[Change]:
        update = self._collector.WaitForUpdatesEx(
            self._version, PC.WaitOptions(maxWaitSeconds=self.max_wait)
        )
        if update is None:
            return
        self._version = update.version
        new_events: list[Any] = []
        for fs in update.filterSet:
            for obj in fs.objectSet:
                if isinstance(obj.obj, vim.VirtualMachine):
                    yield from self._vm_update(obj)
                elif isinstance(obj.obj, vim.dvs.DistributedVirtualPortgroup):
                    yield PortgroupChanged(obj.obj._moId, obj.kind)
                else:
                    new_events.extend(
                        e for e in self._page(obj) if int(e.key) not in self._seen_events
                    )
        for ev in sorted(new_events, key=lambda e: int(e.key)):
            self._seen_events.add(int(ev.key))
            change = change_from_event(ev)
            if change is not None:
                yield change

    def _vm_update(self, obj: Any) -> Iterator[Change]:
        moref = obj.obj._moId
        old = self._vms.get(moref)
        if obj.kind == "leave":
            self._vms.pop(moref, None)
            yield from diff_vm(old, None)
            return
        props: dict[str, Any] = {}
        if old is not None:
            # Partial updates carry only what changed: start from what we had.
            props = {
                "name": old.name,
                "config.instanceUuid": old.instance_uuid,
                "runtime.powerState": old.power_state.value,
            }
        for c in obj.changeSet:
            props[c.name] = c.val
        new = _merge(old, props, moref, self._fields)
        self._vms[moref] = new
        yield from diff_vm(old, new)


def _merge(
    old: VirtualMachine | None, props: dict[str, Any], moref: str, fields: dict[int, str]
) -> VirtualMachine:
    fresh = vm_from_props(moref, props, fields)
    if old is None:
        return fresh
    return VirtualMachine(
        moref=moref,
        name=fresh.name,
        instance_uuid=fresh.instance_uuid,
        host=fresh.host if "runtime.host" in props else old.host,
        power_state=fresh.power_state,
        nics=fresh.nics if "config.hardware.device" in props else old.nics,
        attributes=fresh.attributes if "customValue" in props else old.attributes,
    )
