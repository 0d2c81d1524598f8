"""The transport-node layer: each OVS VM configured agentlessly over OVSDB.

An OVS VM (one per ESX host) needs ``br-int`` for ovn-controller, one trunk
bridge per vDS holding that vDS's trunk vNIC, and for each VM NIC running on
the host a patch pair from the VM's VLAN on the trunk bridge to a br-int port
that carries the NIC's OVN logical port (``external_ids:iface-id``), plus
ovn-controller's settings in the ``Open_vSwitch`` row.  This package keeps that
so, like NVP kept its managed hypervisors: over OVSDB only.

Modules, bottom up:

- :mod:`.model`: frozen values (desired, observed, actions) and the names and
  owner keys written on the node; :mod:`.errors`.
- :mod:`.plan` and :mod:`.mtu`: pure logic, no I/O (unit-tested).
- :mod:`.connection`: one ovsdbapp session per node (unix, tcp, ssl).
- :mod:`.rows`: IDL rows to model values, and the row edits.
- :mod:`.discover`: the trunk vNIC's interface name from its MAC.
- :mod:`.node`: ``read_node`` / ``plan_node`` / ``apply_node`` (``apply_and_observe``: and the
  node afterwards).

Typical use (one worker per node; nodes in parallel)::

    with NodeConnection("tcp:192.0.2.10:6640") as conn:
        actions = apply_node(conn, desired)   # [] when the node already fits
        problems = check_mtu(read_node(conn), "br-phy", GENEVE_OVERHEAD)
"""

from __future__ import annotations

from ovsphere.transport.connection import NodeConnection
from ovsphere.transport.discover import find_nics
from ovsphere.transport.errors import TransportError, TransportUnreachable, TrunkNicMissing
from ovsphere.transport.model import (
    GENEVE_OVERHEAD,
    VXLAN_OVERHEAD,
    Action,
    Chassis,
    MtuProblem,
    NodeDesired,
    NodeObserved,
    Patch,
    Trunk,
)
from ovsphere.transport.mtu import check_mtu
from ovsphere.transport.node import apply_and_observe, apply_node, plan_node, read_node

__all__ = [
    "GENEVE_OVERHEAD",
    "VXLAN_OVERHEAD",
    "Action",
    "Chassis",
    "MtuProblem",
    "NodeConnection",
    "NodeDesired",
    "NodeObserved",
    "Patch",
    "TransportError",
    "TransportUnreachable",
    "Trunk",
    "TrunkNicMissing",
    "apply_and_observe",
    "apply_node",
    "check_mtu",
    "find_nics",
    "plan_node",
    "read_node",
]
