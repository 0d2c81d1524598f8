"""ovsphere's own picture of a vSphere inventory.

Adapters (``ovsphere.vsphere``) read vCenter and return these frozen values;
nothing above the adapters ever holds a live pyVmomi object.  That keeps the
pure logic (checks, plans, VLAN allocation) testable with plain constructors,
and it makes a snapshot of vCenter safe to share between threads.

Objects refer to each other by managed object id (``host-21``, ``vm-42``) or,
for port groups and ports, by their vCenter keys, never by Python reference, so
that the JSON form (``ovsphere inventory --json``, documented in
``docs/inventory-json.md``) is the same shape as the objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

VLAN_MIN = 1
VLAN_MAX = 4094


class PowerState(StrEnum):
    ON = "poweredOn"
    OFF = "poweredOff"
    SUSPENDED = "suspended"


class Binding(StrEnum):
    """Port group port binding, with vCenter's names."""

    STATIC = "earlyBinding"
    DYNAMIC = "lateBinding"
    EPHEMERAL = "ephemeral"
    UNKNOWN = ""


class VlanMode(StrEnum):
    NONE = "none"  # VLAN id 0 on an access spec: untagged, no VLAN
    ACCESS = "access"  # Virtual Switch Tagging, one VLAN
    TRUNK = "trunk"  # Virtual Guest Tagging, ranges
    PVLAN = "pvlan"


@dataclass(frozen=True, order=True)
class VlanRange:
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end <= VLAN_MAX:
            raise ValueError(f"VLAN range {self.start}-{self.end} is not within 0-{VLAN_MAX}")

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


@dataclass(frozen=True)
class PortSetting:
    """The part of a dvPort's setting the trick depends on.

    ``None`` means "not known / not set": for a port group default it means
    vCenter returned nothing; for a desired setting it means "leave as is".
    """

    vlan_mode: VlanMode | None = None
    vlan_id: int | None = None
    trunk: tuple[VlanRange, ...] = ()
    blocked: bool | None = None
    promiscuous: bool | None = None
    forged_transmits: bool | None = None
    mac_changes: bool | None = None


@dataclass(frozen=True)
class Teaming:
    active_uplinks: tuple[str, ...] = ()
    standby_uplinks: tuple[str, ...] = ()

    @property
    def uplinks(self) -> tuple[str, ...]:
        return self.active_uplinks + self.standby_uplinks


@dataclass(frozen=True)
class OverridePolicy:
    """Which per-port overrides the port group allows."""

    vlan: bool = False
    security: bool = False
    block: bool = False


@dataclass(frozen=True)
class Datacenter:
    moref: str
    name: str


@dataclass(frozen=True)
class Cluster:
    moref: str
    name: str
    datacenter: str


@dataclass(frozen=True)
class Host:
    moref: str
    name: str
    datacenter: str
    cluster: str | None
    connection_state: str
    in_maintenance: bool
    power_state: str = "poweredOn"


@dataclass(frozen=True)
class Switch:
    """A vSphere Distributed Switch."""

    moref: str
    uuid: str
    name: str
    datacenter: str
    member_hosts: tuple[str, ...]
    uplink_portgroups: tuple[str, ...]  # port group keys
    uplink_names: tuple[str, ...]
    portgroups: tuple[str, ...]  # port group keys


@dataclass(frozen=True)
class Portgroup:
    moref: str
    key: str
    name: str
    switch_uuid: str
    binding: Binding
    num_ports: int
    auto_expand: bool
    default: PortSetting
    teaming: Teaming
    overrides: OverridePolicy
    config_version: str
    uplink: bool = False  # the switch's own uplink port group
    reset_at_disconnect: bool = False  # vCenter drops per-port settings when a VM disconnects


@dataclass(frozen=True)
class NicBacking:
    """Where a vNIC is plugged in."""

    kind: str  # "dvport", "network" or "other"
    switch_uuid: str | None = None
    portgroup_key: str | None = None
    port_key: str | None = None
    network: str | None = None  # standard port group name


@dataclass(frozen=True)
class Nic:
    key: int
    label: str
    mac: str
    backing: NicBacking
    connected: bool = True


@dataclass(frozen=True)
class VirtualMachine:
    moref: str
    name: str
    instance_uuid: str
    host: str | None
    power_state: PowerState
    nics: tuple[Nic, ...]
    attributes: dict[str, str] = field(default_factory=dict)  # custom attributes by name


@dataclass(frozen=True)
class Connectee:
    vm: str
    nic_key: int


@dataclass(frozen=True)
class Port:
    """A distributed port with its effective setting (own over port group)."""

    key: str
    switch_uuid: str
    portgroup_key: str | None
    setting: PortSetting
    config_version: str
    connectee: Connectee | None = None
    name: str = ""


@dataclass(frozen=True)
class PortEdit:
    """One port's wanted change: only the fields ``setting`` sets are written."""

    key: str
    setting: PortSetting
    config_version: str | None = None
    name: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class OvsVm:
    """A transport node: the OVS VM of one ESX host."""

    vm: str
    name: str
    host: str | None
    power_state: PowerState
    trunk_nics: tuple[Nic, ...]  # vNICs on the isolated port group


@dataclass(frozen=True)
class Inventory:
    datacenters: tuple[Datacenter, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    hosts: tuple[Host, ...] = ()
    switches: tuple[Switch, ...] = ()
    portgroups: tuple[Portgroup, ...] = ()
    vms: tuple[VirtualMachine, ...] = ()

    def switch_named(self, name: str) -> Switch | None:
        return next((s for s in self.switches if s.name == name), None)

    def portgroup_named(self, switch: Switch, name: str) -> Portgroup | None:
        return next(
            (p for p in self.portgroups if p.switch_uuid == switch.uuid and p.name == name),
            None,
        )

    def host(self, moref: str | None) -> Host | None:
        return next((h for h in self.hosts if h.moref == moref), None)

    def vm(self, moref: str) -> VirtualMachine | None:
        return next((v for v in self.vms if v.moref == moref), None)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for a model value (enums as their vCenter strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Network:
    """An ovsphere network: an OVN logical switch (and its DHCP options)."""

    name: str
    cidr: str | None = None
    vni: int | None = None
    transport: str = "geneve"  # geneve | vxlan | vlan:PHYSNET:ID
    uuid: str = ""
    dhcp: str | None = None  # DHCP_Options uuid
    deleting: bool = False  # `network delete --force`: the manager releases its ports, then it

    @property
    def physnet(self) -> tuple[str, int] | None:
        if not self.transport.startswith("vlan:"):
            return None
        _, physnet, tag = self.transport.split(":")
        return physnet, int(tag)


@dataclass(frozen=True)
class LogicalPort:
    """A VM NIC's OVN logical switch port, with the VLAN it holds on its vDS."""

    name: str
    network: str
    mac: str
    vds: str  # vDS uuid
    vlan: int
    vm: str  # instance UUID
    nic: int  # device key
    vm_name: str = ""
    ip: str | None = None  # fixed address; None: OVN's dynamic address (DHCP)
    requested_chassis: tuple[str, ...] = ()
    activation: str | None = None  # "rarp" while a migration is armed
    intent: str = "command"  # "command" or "attribute"
    up: bool | None = None
    dynamic_ip: str | None = None  # what OVN assigned, when dynamic
    detach: bool = False  # `ovsphere detach` asked: the manager releases it safely, then deletes it
