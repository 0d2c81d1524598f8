"""Owner keys: how ovsphere marks the OVN rows it writes, and finds them again.

Every row ovsphere creates carries ``ovsphere:owner=ovsphere`` in its
``external_ids``; reads and cleanups only ever look at such rows, so whatever
else lives in the NB (Neutron's networks, an operator's ovn-nbctl) is never
touched.  The other keys record what a row stands for.
"""

from __future__ import annotations

OWNER = "ovsphere:owner"
OWNER_VALUE = "ovsphere"
NETWORK = "ovsphere:network"  # on Logical_Switch, DHCP_Options: the network's name
VNI = "ovsphere:vni"
TRANSPORT = "ovsphere:transport"  # geneve | vxlan | vlan:PHYSNET:ID
CIDR = "ovsphere:cidr"
VDS = "ovsphere:vds"  # on Logical_Switch_Port: the vDS uuid whose VLAN it holds
VLAN = "ovsphere:vlan"
VM = "ovsphere:vm"  # the VM's instance UUID
VM_NAME = "ovsphere:vm-name"
NIC = "ovsphere:nic"  # the vNIC's device key
INTENT = "ovsphere:intent"  # "command" (ovsphere attach) or "attribute" (custom attribute)
LEDGER_PREFIX = "ovsphere:ledger:"  # on NB_Global: a generation per vDS, bumped per change
DETACH = "ovsphere:detach"  # on a port: release it (set by `ovsphere detach`)
DELETE = "ovsphere:delete"  # on a network: release its ports, then delete it (`--force`)
NODE_PREFIX = "ovsphere:node:"  # on NB_Global: the manager's last word on each transport node
LOCALNET = "ovsphere:localnet"  # on the localnet port of a VLAN-transport network


def owned(external_ids: dict[str, str]) -> bool:
    return external_ids.get(OWNER) == OWNER_VALUE


def mark(**keys: str) -> dict[str, str]:
    """external_ids for a new row: the owner key plus ``keys`` (names use '_' for ':')."""
    return {OWNER: OWNER_VALUE, **keys}
