"""ovsphere's picture of one transport node (an OVS VM): what should be, what is.

The manager builds a :class:`NodeDesired` from vCenter and OVN (which VM NICs run
on this host, on which VLAN of which vDS, bound to which logical port);
:func:`ovsphere.transport.node.read_node` returns a :class:`NodeObserved` read
over OVSDB; :func:`ovsphere.transport.plan.plan_node` compares both.  These are
frozen values without any ovsdbapp or IDL object in them, so a snapshot can be
handed to another thread, printed as JSON (``ovsphere.model.to_jsonable``) or
built by hand in a unit test.

The names and keys below are the contract with what is on the node: every
bridge, port and interface ovsphere creates carries ``OWNER_KEY=OWNER`` in its
``external_ids``, and ovsphere never changes a row without it (except its own
``ovn-*`` keys in the ``Open_vSwitch`` row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

#: Bytes a tunnel adds to a guest frame (outer Ethernet + IP + UDP + header).
GENEVE_OVERHEAD = 58
VXLAN_OVERHEAD = 50
#: MTU operators give the transport network so that guests keep 1500.
RECOMMENDED_TRANSPORT_MTU = 1600

OWNER_KEY = "ovsphere:owner"
OWNER = "ovsphere"
VDS_KEY = "ovsphere:vds"
VLAN_KEY = "ovsphere:vlan"
ROLE_KEY = "ovsphere:role"  # "trunk-nic", "patch-trunk", "patch-int", "probe"

INTEGRATION_BRIDGE = "br-int"
TRUNK_BRIDGE_PREFIX = "br-trunk"
PROBE_BRIDGE = "br-ovsphere-probe"
DATAPATH_TYPE = "netdev"  # no OVS kernel module on the OVS VMs (ARCHITECTURE.md, facts)

#: Interface types that are a real NIC of the OVS VM (not internal, patch or tunnel).
NIC_TYPES = frozenset({"", "system", "afxdp", "afxdp-nonpmd", "dpdk"})

#: Open_vSwitch external_ids keys ovn-controller reads and ovsphere owns.
SYSTEM_ID = "system-id"
OVN_REMOTE = "ovn-remote"
OVN_ENCAP_TYPE = "ovn-encap-type"
OVN_ENCAP_IP = "ovn-encap-ip"
OVN_DATAPATH_TYPE = "ovn-bridge-datapath-type"
OVN_BRIDGE_MAPPINGS = "ovn-bridge-mappings"
CHASSIS_KEYS = (
    SYSTEM_ID,
    OVN_REMOTE,
    OVN_ENCAP_TYPE,
    OVN_ENCAP_IP,
    OVN_DATAPATH_TYPE,
    OVN_BRIDGE_MAPPINGS,
)


@dataclass(frozen=True)
class Chassis:
    """ovn-controller's settings on one node."""

    system_id: str
    ovn_remote: str
    encap_type: str
    encap_ip: str
    bridge_mappings: tuple[tuple[str, str], ...] = ()  # (physical network, bridge)

    def keys(self) -> dict[str, str]:
        """The Open_vSwitch external_ids this chassis stands for."""
        keys = {
            SYSTEM_ID: self.system_id,
            OVN_REMOTE: self.ovn_remote,
            OVN_ENCAP_TYPE: self.encap_type,
            OVN_ENCAP_IP: self.encap_ip,
            OVN_DATAPATH_TYPE: DATAPATH_TYPE,
        }
        if self.bridge_mappings:
            keys[OVN_BRIDGE_MAPPINGS] = ",".join(f"{n}:{b}" for n, b in self.bridge_mappings)
        return keys


@dataclass(frozen=True)
class Trunk:
    """The OVS VM's trunk vNIC on one vDS (its MAC as vCenter reports it)."""

    vds_uuid: str
    mac: str


@dataclass(frozen=True)
class Patch:
    """VLAN ``vlan`` on the vDS's trunk is VM NIC ``iface_id`` (an OVN logical port)."""

    vds_uuid: str
    vlan: int
    iface_id: str
    mac: str
    vm_uuid: str


@dataclass(frozen=True)
class NodeDesired:
    chassis: Chassis
    trunks: tuple[Trunk, ...]
    patches: tuple[Patch, ...]
    transport_interface: str | None = None  # the tunnel endpoint's interface (br-phy, eth1)
    tunnel_overhead: int = GENEVE_OVERHEAD


@dataclass(frozen=True)
class ObservedBridge:
    name: str
    owned: bool
    datapath_type: str
    fail_mode: str
    vds_uuid: str | None = None  # ovsphere:vds on an owned trunk bridge


@dataclass(frozen=True)
class ObservedPort:
    """A port with its (first) interface, as the planner needs it."""

    name: str
    bridge: str
    owned: bool
    type: str = ""  # the interface's type
    tag: int | None = None
    peer: str | None = None  # options:peer of a patch interface
    external_ids: dict[str, str] = field(default_factory=dict)  # the interface's


@dataclass(frozen=True)
class NodeObserved:
    chassis: Chassis | None
    trunks: dict[str, str]  # vds uuid -> owned trunk bridge name
    patches: tuple[Patch, ...]  # complete, correct owned patch pairs only
    nics: dict[str, str]  # mac -> interface name (NICs known to OVSDB or probed)
    mtu: dict[str, int]  # interface name -> MTU, as ovs-vswitchd reports it
    bridges: tuple[ObservedBridge, ...] = ()
    ports: tuple[ObservedPort, ...] = ()
    chassis_keys: dict[str, str] = field(default_factory=dict)  # the CHASSIS_KEYS present
    errors: dict[str, str] = field(default_factory=dict)  # interface name -> vswitchd's error

    def bridge(self, name: str) -> ObservedBridge | None:
        return self._bridges_by_name.get(name)

    def port(self, name: str) -> ObservedPort | None:
        return self._ports_by_name.get(name)

    # A node may have thousands of ports: look them up by name in O(1).  (cached_property
    # writes to the instance __dict__, which a frozen dataclass allows.)
    @cached_property
    def _bridges_by_name(self) -> dict[str, ObservedBridge]:
        return {b.name: b for b in self.bridges}

    @cached_property
    def _ports_by_name(self) -> dict[str, ObservedPort]:
        return {p.name: p for p in self.ports}


@dataclass(frozen=True)
class Action:
    """One change a plan makes, for logs and ``--dry-run`` output."""

    kind: str  # e.g. "add-patch"
    detail: str  # e.g. "vlan 101 -> lp vm1-0 on vds ..."

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class MtuProblem:
    interface: str
    mtu: int
    needed: int
    message: str


def normalize_mac(mac: str) -> str:
    """``00:50:56:AB:CD:EF`` / ``00-50-56-ab-cd-ef`` -> ``00:50:56:ab:cd:ef``."""
    return mac.strip().lower().replace("-", ":")


def trunk_bridge_name(index: int) -> str:
    return f"{TRUNK_BRIDGE_PREFIX}{index}"


def trunk_bridge_index(name: str) -> int | None:
    """``br-trunk3`` -> 3; None for any other name."""
    suffix = name.removeprefix(TRUNK_BRIDGE_PREFIX)
    if suffix == name or not suffix.isdigit():
        return None
    return int(suffix)


def patch_names(bridge_index: int, vlan: int) -> tuple[str, str]:
    """(trunk side, br-int side) port names; at most 15 characters (Linux IFNAMSIZ)."""
    return f"pt{bridge_index}-{vlan}", f"pi{bridge_index}-{vlan}"
