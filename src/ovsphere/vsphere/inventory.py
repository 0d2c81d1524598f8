"""Read the vSphere inventory into ovsphere's model.

One bulk read per object type and datacenter (see :mod:`.collector`), then a
pure conversion into :mod:`ovsphere.model` values.  The result is a snapshot:
it holds no live pyVmomi objects, and a caller that wants fresh state reads
again (or follows :mod:`.watch`).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from ovsphere.model import (
    Binding,
    Cluster,
    Datacenter,
    Host,
    Inventory,
    Nic,
    NicBacking,
    OverridePolicy,
    Portgroup,
    PowerState,
    Switch,
    VirtualMachine,
)
from ovsphere.vsphere.collector import retrieve
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.specs import setting_from_vim, teaming_from_vim

HOST_PATHS = [
    "name",
    "parent",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.powerState",
]
SWITCH_PATHS = [
    "name",
    "uuid",
    "config.host",
    "config.uplinkPortgroup",
    "config.uplinkPortPolicy",
    "portgroup",
]
PORTGROUP_PATHS = ["name", "key", "config"]
VM_PATHS = [
    "name",
    "config.instanceUuid",
    "config.hardware.device",
    "runtime.host",
    "runtime.powerState",
    "customValue",
]


def read_inventory(conn: Connection) -> Inventory:
    return conn.call("read the vSphere inventory", _read)


def _read(si: Any) -> Inventory:
    content = si.content
    fields = (
        {f.key: f.name for f in content.customFieldsManager.field or ()}
        if content.customFieldsManager
        else {}
    )
    dcs = retrieve(
        si, content.rootFolder, vim.Datacenter, ["name", "hostFolder", "networkFolder", "vmFolder"]
    )
    datacenters, clusters, hosts, switches, portgroups, vms = [], [], [], [], [], []
    for dc_ref, dc in sorted(dcs, key=lambda d: d[1]["name"]):
        dc_id = dc_ref._moId
        datacenters.append(Datacenter(moref=dc_id, name=dc["name"]))
        for ref, p in retrieve(si, dc["hostFolder"], vim.ClusterComputeResource, ["name"]):
            clusters.append(Cluster(moref=ref._moId, name=p["name"], datacenter=dc_id))
        for ref, p in retrieve(si, dc["hostFolder"], vim.HostSystem, HOST_PATHS):
            hosts.append(host_from_props(ref._moId, p, dc_id))
        dc_switches = [
            switch_from_props(ref._moId, p, dc_id)
            for ref, p in retrieve(
                si, dc["networkFolder"], vim.DistributedVirtualSwitch, SWITCH_PATHS
            )
        ]
        switches.extend(dc_switches)
        uuids = {sw.moref: sw.uuid for sw in dc_switches}
        uplink_pgs = {key for sw in dc_switches for key in sw.uplink_portgroups}
        for ref, p in retrieve(
            si, dc["networkFolder"], vim.dvs.DistributedVirtualPortgroup, PORTGROUP_PATHS
        ):
            pg = portgroup_from_props(ref._moId, p, uuids, uplink_pgs)
            if pg is not None:
                portgroups.append(pg)
        for ref, p in retrieve(si, dc["vmFolder"], vim.VirtualMachine, VM_PATHS):
            vms.append(vm_from_props(ref._moId, p, fields))
    return Inventory(
        datacenters=tuple(datacenters),
        clusters=tuple(sorted(clusters, key=lambda c: c.name)),
        hosts=tuple(sorted(hosts, key=lambda h: h.name)),
        switches=tuple(sorted(switches, key=lambda s: s.name)),
        portgroups=tuple(sorted(portgroups, key=lambda p: (p.switch_uuid, p.name))),
        vms=tuple(sorted(vms, key=lambda v: v.name)),
    )


def host_from_props(moref: str, p: dict[str, Any], dc: str) -> Host:
    parent = p.get("parent")
    cluster = parent._moId if isinstance(parent, vim.ClusterComputeResource) else None
    return Host(
        moref=moref,
        name=p["name"],
        datacenter=dc,
        cluster=cluster,
        connection_state=str(p.get("runtime.connectionState") or "unknown"),
        in_maintenance=bool(p.get("runtime.inMaintenanceMode")),
        power_state=str(p.get("runtime.powerState") or "unknown"),
    )


def switch_from_props(moref: str, p: dict[str, Any], dc: str) -> Switch:
    members = tuple(
        m.config.host._moId for m in p.get("config.host") or () if m.config and m.config.host
    )
    # vCenter's port group key is the port group's moref id.
    uplink_keys = tuple(r._moId for r in p.get("config.uplinkPortgroup") or ())
    policy = p.get("config.uplinkPortPolicy")
    return Switch(
        moref=moref,
        uuid=p["uuid"],
        name=p["name"],
        datacenter=dc,
        member_hosts=tuple(sorted(members)),
        uplink_portgroups=uplink_keys,
        uplink_names=tuple(getattr(policy, "uplinkPortName", None) or ()),
        portgroups=tuple(r._moId for r in p.get("portgroup") or ()),
    )


def portgroup_from_props(
    moref: str, p: dict[str, Any], switch_uuids: dict[str, str], uplink_pgs: set[str]
) -> Portgroup | None:
    config = p.get("config")
    if config is None or config.distributedVirtualSwitch is None:
        return None
    switch_uuid = switch_uuids.get(config.distributedVirtualSwitch._moId)
    if switch_uuid is None:  # a switch in another datacenter's folder: not ours to read
        return None
    policy = config.policy
    default = config.defaultPortConfig
    return Portgroup(
        moref=moref,
        key=p.get("key") or config.key,
        name=p["name"],
        switch_uuid=switch_uuid,
        binding=_binding(config.type),
        num_ports=int(config.numPorts or 0),
        auto_expand=bool(config.autoExpand),
        default=setting_from_vim(default),
        teaming=teaming_from_vim(default),
        overrides=OverridePolicy(
            vlan=bool(getattr(policy, "vlanOverrideAllowed", False)),
            security=bool(getattr(policy, "securityPolicyOverrideAllowed", False)),
            block=bool(getattr(policy, "blockOverrideAllowed", False)),
        ),
        config_version=str(config.configVersion or ""),
        uplink=moref in uplink_pgs,
        reset_at_disconnect=bool(getattr(policy, "portConfigResetAtDisconnect", False)),
    )


def _binding(value: str | None) -> Binding:
    try:
        return Binding(value or "")
    except ValueError:
        return Binding.UNKNOWN


def nic_from_device(device: Any) -> Nic | None:
    if not isinstance(device, vim.vm.device.VirtualEthernetCard):
        return None
    b = device.backing
    if isinstance(b, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        port = b.port
        backing = NicBacking(
            kind="dvport",
            switch_uuid=port.switchUuid,
            portgroup_key=port.portgroupKey,
            port_key=port.portKey or None,
        )
    elif isinstance(b, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        backing = NicBacking(kind="network", network=b.deviceName)
    else:
        backing = NicBacking(kind="other")
    connectable = device.connectable
    return Nic(
        key=int(device.key),
        label=device.deviceInfo.label if device.deviceInfo else f"NIC {device.key}",
        mac=(device.macAddress or "").lower(),
        backing=backing,
        connected=bool(connectable.connected or connectable.startConnected)
        if connectable
        else True,
    )


def vm_from_props(moref: str, p: dict[str, Any], fields: dict[int, str]) -> VirtualMachine:
    devices = p.get("config.hardware.device") or ()
    nics = tuple(n for n in (nic_from_device(d) for d in devices) if n is not None)
    host = p.get("runtime.host")
    attributes = {
        fields.get(cv.key, str(cv.key)): str(getattr(cv, "value", ""))
        for cv in p.get("customValue") or ()
    }
    return VirtualMachine(
        moref=moref,
        name=p["name"],
        instance_uuid=str(p.get("config.instanceUuid") or ""),
        host=host._moId if host is not None else None,
        power_state=PowerState(str(p.get("runtime.powerState") or "poweredOff")),
        nics=nics,
        attributes=attributes,
    )
