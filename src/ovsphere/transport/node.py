"""Read a transport node, plan it, apply the plan in one OVSDB transaction.

:func:`apply_node` is what the manager calls for each OVS VM on every pass:
it re-reads the node (:func:`read_node`, after a :meth:`~NodeConnection.sync`
so that the read includes every earlier commit), finds trunk vNICs that OVSDB
does not know yet by their MAC (:func:`ovsphere.transport.discover.find_nics`,
only when needed), plans (:func:`ovsphere.transport.plan.plan_steps`, pure) and
writes all the steps in ONE transaction, so a node is never left half
configured.  Applying twice gives no actions and no transaction the second
time.

Concurrency: calls for one node must be serialised by the caller (the manager
reconciles each node in one worker at a time); calls for different nodes run
in parallel on their own connections.  Writers that are not ovsphere
(ovn-controller adding tunnel ports to br-int, an operator's ovs-vsctl) may
change the node at any time: the transaction edits with mutations, re-checks
each step against the replica when it runs, and a clash becomes a temporary
:class:`~ovsphere.errors.ConflictError`, after which the next pass re-reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ovsphere.errors import ConflictError
from ovsphere.transport import rows
from ovsphere.transport.connection import NodeConnection
from ovsphere.transport.discover import find_nics
from ovsphere.transport.model import (
    INTEGRATION_BRIDGE,
    ROLE_KEY,
    VDS_KEY,
    VLAN_KEY,
    Action,
    NodeDesired,
    NodeObserved,
    normalize_mac,
)
from ovsphere.transport.plan import (
    ATTACHED_MAC,
    IFACE_ID,
    VM_UUID,
    AddBridge,
    AddPatch,
    AddTrunkNic,
    DelBridge,
    DelPatch,
    DelPort,
    FixBridge,
    SetChassis,
    Step,
    UpdatePatch,
    observe,
    plan_node,
    plan_steps,
)

__all__ = ["apply_and_observe", "apply_node", "plan_node", "read_node"]


def read_node(conn: NodeConnection, *, sync: bool = True) -> NodeObserved:
    """The node as its OVSDB has it now (``sync=False``: as the replica has it)."""
    if sync:
        conn.sync()

    def read(tables: Any) -> NodeObserved:
        return observe(
            bridges=rows.observed_bridges(tables),
            ports=rows.observed_ports(tables),
            chassis_keys=rows.chassis_keys(tables),
            nics=rows.nic_macs(tables),
            mtu=rows.mtus(tables),
            errors=rows.interface_errors(tables),
        )

    return conn.read(read)


#: Seconds a transaction may take per step, over the connection's timeout.  The ovs
#: library spends ~5 ms of this process's CPU per patch pair added (its IDL and, without
#: its C extension, its JSON parser are pure Python), and the manager applies eight nodes
#: at once in one process: a node of 128 new VM NICs waits seconds for its own client
#: before ovsdb-server and ovs-vswitchd are even involved.
STEP_SECONDS = 0.1


def apply_node(
    conn: NodeConnection, desired: NodeDesired, *, nic_candidates: Sequence[str] | None = None
) -> list[Action]:
    """Make the node what ``desired`` says; return what changed ([] when nothing did)."""
    return apply_and_observe(conn, desired, nic_candidates=nic_candidates)[0]


def apply_and_observe(
    conn: NodeConnection, desired: NodeDesired, *, nic_candidates: Sequence[str] | None = None
) -> tuple[list[Action], NodeObserved]:
    """:func:`apply_node`, and the node as it is afterwards (read once more only if changed)."""
    observed = read_node(conn)
    missing = {normalize_mac(t.mac) for t in desired.trunks} - observed.nics.keys()
    if missing:
        found = find_nics(conn) if nic_candidates is None else find_nics(conn, nic_candidates)
        observed = replace(observed, nics={**found, **observed.nics})
    steps = plan_steps(observed, desired)
    if not steps:
        return [], observed
    conn.transact(
        lambda txn, tables: _write(txn, tables, steps),
        timeout=conn.timeout + STEP_SECONDS * len(steps),
    )
    # The commit waited for ovs-vswitchd, so the replica holds what it reported since.
    return [s.action() for s in steps], read_node(conn, sync=False)


def _write(txn: Any, tables: Any, steps: list[Step]) -> None:
    for step in steps:
        _WRITERS[type(step)](txn, tables, step)


def _del_port(txn: Any, tables: Any, step: Any) -> None:
    rows.delete_port(tables, step.bridge, step.name)


def _del_patch(txn: Any, tables: Any, step: Any) -> None:
    rows.delete_port(tables, step.trunk_bridge, step.names[0])
    rows.delete_port(tables, INTEGRATION_BRIDGE, step.names[1])


def _del_bridge(txn: Any, tables: Any, step: Any) -> None:
    rows.delete_bridge(tables, step.name)


def _fix_bridge(txn: Any, tables: Any, step: Any) -> None:
    br = rows.find_bridge(tables, step.name)
    if br is not None and rows.owned(br):
        br.datapath_type = step.datapath_type
        br.fail_mode = [step.fail_mode] if step.fail_mode else []


def _add_bridge(txn: Any, tables: Any, step: Any) -> None:
    extra = {VDS_KEY: step.vds_uuid} if step.vds_uuid else {}
    rows.insert_bridge(
        txn,
        tables,
        step.name,
        fail_mode=step.fail_mode,
        external_ids=rows.owner_ids(**extra),
        other_config=dict(step.other_config),
    )


def _add_trunk_nic(txn: Any, tables: Any, step: Any) -> None:
    rows.insert_port(
        txn,
        tables,
        _bridge(tables, step.bridge),
        step.nic,
        external_ids=rows.owner_ids(**{ROLE_KEY: "trunk-nic", VDS_KEY: step.vds_uuid}),
    )


def _add_patch(txn: Any, tables: Any, step: Any) -> None:
    p = step.patch
    outer, inner = step.names
    common = {VDS_KEY: p.vds_uuid, VLAN_KEY: str(p.vlan)}
    rows.insert_port(
        txn,
        tables,
        _bridge(tables, step.trunk_bridge),
        outer,
        iface_type="patch",
        tag=p.vlan,
        options={"peer": inner},
        external_ids=rows.owner_ids(**{ROLE_KEY: "patch-trunk"}, **common),
    )
    rows.insert_port(
        txn,
        tables,
        _bridge(tables, INTEGRATION_BRIDGE),
        inner,
        iface_type="patch",
        options={"peer": outer},
        external_ids=rows.owner_ids(**{ROLE_KEY: "patch-int"}, **common),
        iface_external_ids=rows.owner_ids(
            **{ROLE_KEY: "patch-int"}, **common, **_binding(p.iface_id, p.mac, p.vm_uuid)
        ),
    )


def _update_patch(txn: Any, tables: Any, step: Any) -> None:
    iface = rows.find_interface(tables, step.port)
    if iface is None or not rows.owned(iface):
        raise ConflictError(
            f"patch port {step.port} vanished while ovsphere was about to update it",
            fix="the next pass re-reads the node and plans again",
        )
    p = step.patch
    for key, value in _binding(p.iface_id, p.mac, p.vm_uuid).items():
        iface.setkey("external_ids", key, value)


def _set_chassis(txn: Any, tables: Any, step: Any) -> None:
    ovs = rows.open_vswitch(tables)
    for key, value in step.set:
        ovs.setkey("external_ids", key, value)
    for key in step.remove:
        ovs.delkey("external_ids", key)


def _binding(iface_id: str, mac: str, vm_uuid: str) -> dict[str, str]:
    """What ovn-controller binds (os-vif writes the same on OpenStack computes)."""
    return {IFACE_ID: iface_id, ATTACHED_MAC: mac, VM_UUID: vm_uuid}


def _bridge(tables: Any, name: str) -> Any:
    br = rows.find_bridge(tables, name)
    if br is None:
        raise ConflictError(
            f"bridge {name} vanished while ovsphere was adding ports to it",
            fix="the next pass re-reads the node and plans again",
        )
    return br


_WRITERS: dict[type, Any] = {
    DelPort: _del_port,
    DelPatch: _del_patch,
    DelBridge: _del_bridge,
    FixBridge: _fix_bridge,
    AddBridge: _add_bridge,
    AddTrunkNic: _add_trunk_nic,
    AddPatch: _add_patch,
    UpdatePatch: _update_patch,
    SetChassis: _set_chassis,
}
