"""VM NIC ports: OVN logical switch ports that also hold their VLAN on the ledger.

The VLAN ledger of a vDS is the set of ovsphere's logical ports carrying
``ovsphere:vds=<uuid>`` and ``ovsphere:vlan=<n>``: the ports *are* the
allocation, so a port and its VLAN appear and disappear together.  Writers
(:func:`write_ports`) name the ledger generation they computed their plan
from; the transaction checks it against ``NB_Global.external_ids``
(``ovsphere:ledger:<vds>``), verifies that column and bumps it, so that of two
managers allocating on one vDS at once exactly one commits and the other gets
:class:`~ovsphere.errors.ConflictError`, re-reads and tries again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ovsdbapp.backend.ovs_idl import command

from ovsphere.errors import ConflictError
from ovsphere.logic.vlan import Owner
from ovsphere.model import LogicalPort
from ovsphere.ovn import owners
from ovsphere.ovn.connection import NbClient


def port_name(vm_uuid: str, nic_key: int) -> str:
    return f"vm-{vm_uuid}-{nic_key}"


def _port(row: Any, network: str) -> LogicalPort | None:
    ids = dict(row.external_ids)
    if not owners.owned(ids) or owners.VLAN not in ids:
        return None
    address = (row.addresses or [""])[0].split()
    mac = address[0] if address else ""
    ip = address[1] if len(address) > 1 and address[1] != "dynamic" else None
    dynamic = (row.dynamic_addresses or [""])[0].split() if row.dynamic_addresses else []
    chassis = row.options.get("requested-chassis", "")
    return LogicalPort(
        name=row.name,
        network=network,
        mac=mac,
        vds=ids.get(owners.VDS, ""),
        vlan=int(ids[owners.VLAN]),
        vm=ids.get(owners.VM, ""),
        nic=int(ids.get(owners.NIC, "0")),
        vm_name=ids.get(owners.VM_NAME, ""),
        ip=ip,
        requested_chassis=tuple(c for c in chassis.split(",") if c),
        activation=row.options.get("activation-strategy"),
        intent=ids.get(owners.INTENT, "command"),
        up=row.up[0] if row.up else None,
        dynamic_ip=dynamic[1] if len(dynamic) > 1 else None,
        detach=ids.get(owners.DETACH) == "true",
    )


def read_ports(client: NbClient) -> list[LogicalPort]:
    out = []
    for ls in client.api.tables["Logical_Switch"].rows.values():
        if not owners.owned(dict(ls.external_ids)):
            continue
        for row in ls.ports:
            port = _port(row, ls.name)
            if port is not None:
                out.append(port)
    return sorted(out, key=lambda p: p.name)


def ledger(ports: Sequence[LogicalPort], vds: str) -> dict[int, Owner]:
    return {p.vlan: Owner(p.vm, p.nic) for p in ports if p.vds == vds}


def _nb_global(client: NbClient) -> Any:
    return next(iter(client.api.tables["NB_Global"].rows.values()))


def generation(client: NbClient, vds: str) -> int:
    return int(_nb_global(client).external_ids.get(owners.LEDGER_PREFIX + vds, "0"))


class _CheckLedger(command.BaseCommand):  # type: ignore[misc]
    """Abort unless the vDS's ledger is still at ``expected``; then bump it."""

    def __init__(self, api: Any, vds: str, expected: int) -> None:
        super().__init__(api)
        self.vds = vds
        self.expected = expected

    def run_idl(self, txn: Any) -> None:
        row = next(iter(self.api.tables["NB_Global"].rows.values()))
        key = owners.LEDGER_PREFIX + self.vds
        current = int(row.external_ids.get(key, "0"))
        if current != self.expected:
            raise ConflictError(
                f"the VLAN ledger of vDS {self.vds} changed (generation {self.expected} -> "
                f"{current}): another manager or command allocated meanwhile",
                fix="re-read and plan again",
            )
        row.verify("external_ids")
        row.setkey("external_ids", key, str(current + 1))


def write_ports(
    client: NbClient,
    *,
    generations: Mapping[str, int],
    add: Sequence[LogicalPort] = (),
    delete: Sequence[str] = (),
    dhcp: Mapping[str, str] | None = None,
) -> None:
    """Add and delete ports in one transaction, checked against the ledger generations."""
    api = client.api
    with client.transaction(f"write {len(add)} ports, delete {len(delete)}") as txn:
        for vds, gen in sorted(generations.items()):
            txn.add(_CheckLedger(api, vds, gen))
        for name in delete:
            txn.add(api.lsp_del(name, if_exists=True))
        for p in add:
            addresses = f"{p.mac} {p.ip}" if p.ip else f"{p.mac} dynamic"
            security = f"{p.mac} {p.ip}" if p.ip else p.mac
            ids = owners.mark(
                **{
                    owners.VDS: p.vds,
                    owners.VLAN: str(p.vlan),
                    owners.VM: p.vm,
                    owners.NIC: str(p.nic),
                    owners.VM_NAME: p.vm_name,
                    owners.INTENT: p.intent,
                }
            )
            options = (
                {"requested-chassis": ",".join(p.requested_chassis)} if p.requested_chassis else {}
            )
            columns: dict[str, Any] = {
                "addresses": [addresses],
                "port_security": [security],
                "external_ids": ids,
                "options": options,
            }
            if dhcp and p.network in dhcp:
                # A reference column takes a UUID, not its string (which the IDL drops).
                columns["dhcpv4_options"] = uuid.UUID(dhcp[p.network])
            txn.add(api.lsp_add(p.network, p.name, may_exist=True, **columns))


def set_chassis(
    client: NbClient, name: str, chassis: Sequence[str], *, activation: str | None = None
) -> None:
    """Pin a port to one chassis (or to source and destination during a migration)."""
    set_chassis_many(client, [(name, tuple(chassis), activation)])


def set_chassis_many(
    client: NbClient, pins: Sequence[tuple[str, tuple[str, ...], str | None]]
) -> None:
    """Several ports' (name, requested-chassis, activation-strategy) in one transaction."""
    if not pins:
        return
    api = client.api
    with client.transaction(f"pin {len(pins)} ports") as txn:
        for name, chassis, activation in pins:
            txn.add(
                api.db_set(
                    "Logical_Switch_Port",
                    name,
                    ("options", {"requested-chassis": ",".join(chassis)}),
                )
            )
            if activation:
                txn.add(
                    api.db_set(
                        "Logical_Switch_Port",
                        name,
                        ("options", {"activation-strategy": activation}),
                    )
                )
            else:
                txn.add(
                    api.db_remove(
                        "Logical_Switch_Port",
                        name,
                        "options",
                        "activation-strategy",
                        if_exists=True,
                    )
                )


def mark_detach(client: NbClient, names: Sequence[str]) -> None:
    """Ask the manager to release these ports (block their dvPorts, then delete them)."""
    api = client.api
    with client.transaction(f"mark {len(names)} ports for detach") as txn:
        for name in names:
            txn.add(
                api.db_set("Logical_Switch_Port", name, ("external_ids", {owners.DETACH: "true"}))
            )


def set_node_errors(client: NbClient, errors: Mapping[str, str | None]) -> None:
    """Record (or, with None, clear) the manager's last word on each transport node."""
    row = _nb_global(client)
    have = dict(row.external_ids)
    changes = {
        owners.NODE_PREFIX + node: text
        for node, text in errors.items()
        if have.get(owners.NODE_PREFIX + node) != text
    }
    if not changes:
        return
    api = client.api
    with client.transaction("record transport node errors") as txn:
        for key, text in changes.items():
            if text is None:
                txn.add(api.db_remove("NB_Global", row.uuid, "external_ids", key, if_exists=True))
            else:
                txn.add(api.db_set("NB_Global", row.uuid, ("external_ids", {key: text})))
