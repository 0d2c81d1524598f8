"""IDL rows in, model values out; and the few row edits ovsphere makes.

Shared by :mod:`.node` (read, apply) and :mod:`.discover` (the NIC probe), and
only ever called inside :meth:`NodeConnection.read` / ``transact`` (that is,
under the connection's lock, on its replica).  Everything ovsphere inserts
carries ``ovsphere:owner=ovsphere``; the edit helpers refuse to delete a row
without it, whatever the caller planned, so a stale plan cannot remove a
stranger's port.  Bridges and ports are edited with mutations
(``addvalue``/``delvalue``/``setkey``), never by rewriting a whole column, so
ovn-controller's concurrent changes to the same rows are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ovsdbapp.backend.ovs_idl import idlutils

from ovsphere.errors import ConflictError
from ovsphere.transport.model import (
    CHASSIS_KEYS,
    DATAPATH_TYPE,
    NIC_TYPES,
    OWNER,
    OWNER_KEY,
    VDS_KEY,
    ObservedBridge,
    ObservedPort,
    normalize_mac,
)


def owned(row: Any) -> bool:
    return bool(row.external_ids.get(OWNER_KEY) == OWNER)


def optional(value: Any) -> Any:
    """An optional column's value: the IDL gives ``[]`` or ``[x]``."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def open_vswitch(tables: Any) -> Any:
    rows = list(tables["Open_vSwitch"].rows.values())
    if not rows:
        raise ConflictError(
            "the OVS VM's database has no Open_vSwitch row yet",
            fix="wait for ovs-vswitchd (or ovs-vsctl init) to initialise it",
        )
    return rows[0]


def bridge_rows(tables: Any) -> Iterator[Any]:
    yield from tables["Bridge"].rows.values()


def _by_name(tables: Any, table: str, name: str) -> Any:
    rows = tables[table]
    try:  # ovsdbapp indexes the schema's "name" index; it follows in-transaction edits
        return next(idlutils.index_lookup_all(rows, name=name), None)
    except KeyError:
        return next((r for r in rows.rows.values() if r.name == name), None)


def find_bridge(tables: Any, name: str) -> Any:
    return _by_name(tables, "Bridge", name)


def find_port(tables: Any, name: str) -> Any:
    return _by_name(tables, "Port", name)


def find_interface(tables: Any, name: str) -> Any:
    return _by_name(tables, "Interface", name)


# --- reading -----------------------------------------------------------------------------------


def observed_bridges(tables: Any) -> list[ObservedBridge]:
    return [
        ObservedBridge(
            name=b.name,
            owned=owned(b),
            datapath_type=b.datapath_type or "system",
            fail_mode=optional(b.fail_mode) or "",
            vds_uuid=b.external_ids.get(VDS_KEY) if owned(b) else None,
        )
        for b in bridge_rows(tables)
    ]


def observed_ports(tables: Any) -> list[ObservedPort]:
    # Each column read converts the IDL's datum anew (tens of microseconds): read each once,
    # which matters with thousands of patch ports on a node.
    ports = []
    for b in bridge_rows(tables):
        bridge = b.name
        for p in b.ports:
            interfaces = p.interfaces
            iface = interfaces[0] if interfaces else None
            ports.append(
                ObservedPort(
                    name=p.name,
                    bridge=bridge,
                    owned=owned(p),
                    type=iface.type if iface is not None else "",
                    tag=optional(p.tag),
                    peer=iface.options.get("peer") if iface is not None else None,
                    external_ids=dict(iface.external_ids) if iface is not None else {},
                )
            )
    return ports


def chassis_keys(tables: Any) -> dict[str, str]:
    ids = open_vswitch(tables).external_ids
    return {k: str(ids[k]) for k in CHASSIS_KEYS if k in ids}


def nic_macs(tables: Any) -> dict[str, str]:
    """mac -> name of every real NIC (not internal/patch/tunnel) vswitchd has opened."""
    found = {}
    for iface in tables["Interface"].rows.values():
        mac = optional(iface.mac_in_use)
        if mac and iface.type in NIC_TYPES:
            found[normalize_mac(mac)] = iface.name
    return found


def mtus(tables: Any) -> dict[str, int]:
    out = {}
    for iface in tables["Interface"].rows.values():
        mtu = optional(iface.mtu)
        if mtu:
            out[iface.name] = int(mtu)
    return out


def interface_errors(tables: Any) -> dict[str, str]:
    out = {}
    for iface in tables["Interface"].rows.values():
        error = optional(iface.error)
        if error:
            out[iface.name] = str(error)
    return out


# --- editing (inside a transaction) ------------------------------------------------------------


def owner_ids(**extra: str) -> dict[str, str]:
    return {OWNER_KEY: OWNER, **extra}


def insert_bridge(
    txn: Any,
    tables: Any,
    name: str,
    *,
    fail_mode: str,
    external_ids: dict[str, str],
    other_config: dict[str, str] | None = None,
    local_port: bool = True,
) -> Any:
    """A netdev bridge (with its internal local port, as ``ovs-vsctl add-br`` makes it)."""
    if find_bridge(tables, name) is not None:
        raise ConflictError(
            f"bridge {name} appeared while ovsphere was about to create it",
            fix="the next pass re-reads the node and plans again",
        )
    br = txn.insert(tables["Bridge"])
    br.name = name
    br.datapath_type = DATAPATH_TYPE
    br.fail_mode = [fail_mode] if fail_mode else []
    br.external_ids = external_ids
    br.other_config = other_config or {}
    open_vswitch(tables).addvalue("bridges", br)
    if local_port:
        insert_port(txn, tables, br, name, iface_type="internal", external_ids=external_ids)
    return br


def insert_port(
    txn: Any,
    tables: Any,
    bridge: Any,
    name: str,
    *,
    iface_type: str = "",
    tag: int | None = None,
    options: dict[str, str] | None = None,
    external_ids: dict[str, str],
    iface_external_ids: dict[str, str] | None = None,
) -> Any:
    """A port with one interface of the same name, on ``bridge`` (a row)."""
    if find_port(tables, name) is not None or find_interface(tables, name) is not None:
        raise ConflictError(
            f"port {name} appeared while ovsphere was about to create it",
            fix="the next pass re-reads the node and plans again",
        )
    iface = txn.insert(tables["Interface"])
    iface.name = name
    iface.type = iface_type
    iface.options = options or {}
    iface.external_ids = iface_external_ids if iface_external_ids is not None else external_ids
    port = txn.insert(tables["Port"])
    port.name = name
    port.interfaces = [iface]
    port.external_ids = external_ids
    if tag is not None:
        port.tag = tag
    bridge.addvalue("ports", port)
    return port


def delete_port(tables: Any, bridge_name: str, name: str) -> None:
    """Remove an owned port (and its interfaces); nothing if it is already gone."""
    port = find_port(tables, name)
    if port is None:
        return
    bridge = find_bridge(tables, bridge_name)
    if bridge is None or port not in bridge.ports:
        bridge = next((b for b in bridge_rows(tables) if port in b.ports), None)
    if not owned(port) or (bridge is not None and bridge.name != bridge_name):
        raise ConflictError(
            f"port {name} changed owner or bridge while ovsphere was about to remove it",
            fix="the next pass re-reads the node and plans again",
        )
    if bridge is not None:
        bridge.delvalue("ports", port)
    for iface in port.interfaces:
        iface.delete()
    port.delete()


def delete_bridge(tables: Any, name: str) -> None:
    """Remove an owned bridge with all its ports; nothing if it is already gone."""
    br = find_bridge(tables, name)
    if br is None:
        return
    if not owned(br):
        raise ConflictError(
            f"bridge {name} is no longer ovsphere's",
            fix="the next pass re-reads the node and plans again",
        )
    for port in br.ports:
        for iface in port.interfaces:
            iface.delete()
        port.delete()
    open_vswitch(tables).delvalue("bridges", br)
    br.delete()
