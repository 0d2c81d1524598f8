"""Find the OVS VM's network interfaces by MAC, over OVSDB only.

vCenter knows the MAC of the OVS VM's trunk vNIC on each vDS, not the name the
guest gave it (eth1? ens224?).  ovsphere has no agent in the OVS VM, so it asks
ovs-vswitchd: an Interface row reports ``mac_in_use`` once vswitchd has opened
the device.  Interfaces already in OVSDB have it; for the others
:func:`find_nics` adds the candidate names as ports of a temporary owned bridge
``br-ovsphere-probe`` (netdev, fail-mode secure, no flows: nothing is
forwarded while it exists, and it has no local port), waits until vswitchd has
filled ``mac_in_use`` (or reported an error: no such device) for each, and
removes the bridge again, also when anything fails.  While a NIC sits on the
probe bridge vswitchd has it in promiscuous mode; it is restored on removal.
A probe bridge left behind by a crash is removed by the next
:func:`~ovsphere.transport.node.apply_node` (it is owned and not wanted).

Concurrency: the probe makes two transactions of its own; do not run two
probes, or a probe and an apply, on one node at the same time (the manager
serialises per node).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ovsphere.transport import rows
from ovsphere.transport.connection import NodeConnection
from ovsphere.transport.errors import TransportUnreachable
from ovsphere.transport.model import PROBE_BRIDGE, ROLE_KEY, normalize_mac

DEFAULT_CANDIDATES: tuple[str, ...] = (
    *(f"eth{i}" for i in range(10)),
    "ens160",
    "ens192",
    "ens224",
    "ens256",
)


def find_nics(
    conn: NodeConnection, candidates: Sequence[str] = DEFAULT_CANDIDATES
) -> dict[str, str]:
    """mac -> interface name of the node's NICs: those in OVSDB, and the candidates that exist."""
    conn.sync()
    known, names = conn.read(lambda t: (rows.nic_macs(t), _interface_names(t)))
    probe = [c for c in dict.fromkeys(candidates) if c not in names]
    if not probe:
        return known
    conn.transact(lambda txn, tables: _add_probe(txn, tables, probe))
    try:
        found = _wait_for_macs(conn, probe)
    finally:
        conn.transact(lambda txn, tables: rows.delete_bridge(tables, PROBE_BRIDGE))
    return {**found, **known}


def _interface_names(tables: Any) -> set[str]:
    return {i.name for i in tables["Interface"].rows.values()}


def _add_probe(txn: Any, tables: Any, names: list[str]) -> None:
    ids = rows.owner_ids(**{ROLE_KEY: "probe"})
    stale = rows.find_bridge(tables, PROBE_BRIDGE)
    if stale is not None and rows.owned(stale):
        rows.delete_bridge(tables, PROBE_BRIDGE)
    # No local port: nothing but the probed NICs, and no TAP device to create.
    br = rows.insert_bridge(
        txn, tables, PROBE_BRIDGE, fail_mode="secure", external_ids=ids, local_port=False
    )
    for name in names:
        if rows.find_interface(tables, name) is None:
            rows.insert_port(txn, tables, br, name, external_ids=ids)


def _wait_for_macs(conn: NodeConnection, names: list[str]) -> dict[str, str]:
    """Poll the replica until vswitchd has reported on every probed interface."""
    deadline = time.monotonic() + conn.timeout
    delay = 0.005
    while True:
        found, pending = conn.read(lambda t: _probe_state(t, names))
        if not pending:
            return found
        if time.monotonic() > deadline:
            raise TransportUnreachable(
                f"ovs-vswitchd on OVS VM {conn.remote} did not report the MAC of "
                f"{', '.join(sorted(pending))} within {conn.timeout:g} s",
                fix="check that ovs-vswitchd runs in the OVS VM (its log says why)",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _probe_state(tables: Any, names: list[str]) -> tuple[dict[str, str], set[str]]:
    found: dict[str, str] = {}
    pending: set[str] = set()
    for name in names:
        iface = rows.find_interface(tables, name)
        if iface is None:
            continue
        mac = rows.optional(iface.mac_in_use)
        if mac:
            found[normalize_mac(mac)] = name
        elif not rows.optional(iface.error) and rows.optional(iface.ofport) != -1:
            pending.add(name)
    return found, pending
