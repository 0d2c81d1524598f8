"""Names and addresses of everything a lab is made of, derived from its topology.

Pure, so that ``up``, ``down``, ``status``, ``exec`` and the agent agree on
every name without asking each other.  Namespaces are ``<lab>-<node>``; the
OVS VM of host ``esx1`` is the node ``ovs-esx1`` (also its vCenter name);
addresses come from the topology's underlay and management networks and live
only inside the lab's namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ovsphere.lab.topology import Topology

#: interface names inside an OVS VM, as the seed describes it
TRUNK_IF = "eth0"
TRANSPORT_IF = "eth1"
MGMT_IF = "eth2"
OVSDB_PORT = 6640
NB_PORT = 6641
SB_PORT = 6642
RAFT_NB_PORT = 6643
RAFT_SB_PORT = 6644


@dataclass(frozen=True)
class Layout:
    topology: Topology

    @property
    def name(self) -> str:
        return self.topology.name

    def ns(self, node: str) -> str:
        return f"{self.name}-{node}"

    @property
    def fabric(self) -> str:
        return self.ns("fabric")

    def central(self, member: int = 0) -> str:
        return self.ns("central" if member == 0 else f"central{member}")

    @property
    def central_members(self) -> int:
        return self.topology.ovn.clustered

    @staticmethod
    def ovs_vm(host: str) -> str:
        return f"ovs-{host}"

    @property
    def ovs_vms(self) -> list[str]:
        return [self.ovs_vm(h) for h in self.topology.hosts]

    @property
    def transport_nodes(self) -> list[str]:
        """Every node with OVS + ovn-controller: OVS VMs, then KVM hosts."""
        return self.ovs_vms + [k.name for k in self.topology.kvm]

    @property
    def vm_names(self) -> list[str]:
        return [v.name for v in self.topology.vms]

    @property
    def kvm_vm_names(self) -> list[str]:
        return [vm.name for k in self.topology.kvm for vm in k.vms]

    @property
    def namespaces(self) -> list[str]:
        nodes = [
            "fabric",
            *(("central" if i == 0 else f"central{i}") for i in range(self.central_members)),
        ]
        nodes += self.topology.hosts + self.transport_nodes + self.vm_names + self.kvm_vm_names
        return [self.ns(n) for n in nodes]

    def node_index(self, node: str) -> int:
        return self.transport_nodes.index(node)

    def underlay_ip(self, node: str) -> IPv4Address:
        return self.topology.underlay.network_address + 10 + self.node_index(node)

    def mgmt_ip(self, node: str) -> IPv4Address:
        return self.topology.management.network_address + 10 + self.node_index(node)

    def central_ip(self, member: int = 0) -> IPv4Address:
        return self.topology.management.network_address + 2 + member

    @property
    def underlay_prefix(self) -> int:
        return self.topology.underlay.prefixlen

    @property
    def mgmt_prefix(self) -> int:
        return self.topology.management.prefixlen

    def sb_remote(self) -> str:
        """The SB connection string ovn-controller uses (over the management network)."""
        return ",".join(f"tcp:{self.central_ip(i)}:{SB_PORT}" for i in range(self.central_members))

    @staticmethod
    def port_ifname(switch_index: int, port_key: str) -> str:
        """A dvPort's interface on its host (port keys are unique per vDS only)."""
        name = f"p{switch_index}-{port_key}"
        if len(name) > 15:
            raise ValueError(f"port key {port_key!r} is too long for an interface name")
        return name

    @staticmethod
    def bridge(switch_index: int) -> str:
        return f"vds{switch_index}"

    @staticmethod
    def uplink_ifname(switch_index: int) -> str:
        return f"uplink{switch_index}"
