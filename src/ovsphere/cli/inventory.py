"""``ovsphere inventory``: what vCenter holds, as ovsphere sees it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.logic.ovs_vms import find_ovs_vms
from ovsphere.model import Inventory, Nic, OvsVm, to_jsonable
from ovsphere.vsphere.inventory import read_inventory

#: bump when a field changes meaning or disappears (adding fields does not)
JSON_VERSION = 1


@reports_errors
def inventory(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="print JSON (docs/inventory-json.md)")
    ] = False,
) -> None:
    """Datacenters, hosts, vDS, port groups, VMs and the OVS VMs found by configuration."""
    cli = cli_context(ctx)
    settings = cli.settings()
    with cli.connection() as conn:
        inv = read_inventory(conn)
    isolated = [p for p in inv.portgroups if p.name == settings.portgroup]
    ovs_vms = find_ovs_vms(inv, isolated, cli.ovs_vm_rule())
    if as_json:
        print(json.dumps(inventory_json(inv, ovs_vms), indent=2, sort_keys=True))
    else:
        render(inv, ovs_vms)


def inventory_json(inv: Inventory, ovs_vms: list[OvsVm]) -> dict[str, Any]:
    data: dict[str, Any] = {"version": JSON_VERSION}
    data.update(to_jsonable(inv))
    data["ovs_vms"] = to_jsonable(ovs_vms)
    return data


def _nic(n: Nic, names: dict[str, str]) -> str:
    b = n.backing
    if b.kind == "dvport":
        where = f"{names.get(b.portgroup_key or '', b.portgroup_key)} port {b.port_key or '-'}"
    elif b.kind == "network":
        where = b.network or "?"
    else:
        where = "other"
    return f"{n.key} {n.mac} {where}"


def render(inv: Inventory, ovs_vms: list[OvsVm]) -> None:
    hosts = {h.moref: h.name for h in inv.hosts}
    clusters = {c.moref: c.name for c in inv.clusters}
    pg_names = {p.key: p.name for p in inv.portgroups}
    ovs = {o.vm for o in ovs_vms}

    t = Table(title="Hosts")
    for col in ("host", "cluster", "state", "maintenance"):
        t.add_column(col)
    for h in inv.hosts:
        t.add_row(
            h.name,
            clusters.get(h.cluster or "", "-"),
            h.connection_state,
            "yes" if h.in_maintenance else "no",
        )
    console.print(t)

    t = Table(title="Distributed switches")
    for col in ("vDS", "uuid", "member hosts", "uplinks"):
        t.add_column(col)
    for s in inv.switches:
        t.add_row(
            s.name,
            s.uuid,
            ", ".join(hosts.get(m, m) for m in s.member_hosts),
            ", ".join(s.uplink_names),
        )
    console.print(t)

    t = Table(title="Port groups")
    for col in ("port group", "binding", "ports", "VLAN", "overrides", "security", "uplinks"):
        t.add_column(col)
    for p in inv.portgroups:
        d = p.default
        sec = "/".join(
            "A" if v else "R" for v in (d.promiscuous, d.forged_transmits, d.mac_changes)
        )
        over = (
            ",".join(
                n
                for n, ok in (
                    ("vlan", p.overrides.vlan),
                    ("security", p.overrides.security),
                    ("block", p.overrides.block),
                )
                if ok
            )
            or "-"
        )
        vlan = d.vlan_mode.value if d.vlan_mode else "-"
        if d.vlan_id:
            vlan = f"{vlan} {d.vlan_id}"
        t.add_row(
            p.name + (" (uplink)" if p.uplink else ""),
            p.binding.value or "-",
            str(p.num_ports),
            vlan,
            over,
            sec,
            ", ".join(p.teaming.uplinks) or "none",
        )
    console.print(t)

    t = Table(title="Virtual machines")
    for col in ("VM", "host", "power", "NICs (key MAC backing)", "role"):
        t.add_column(col)
    for v in inv.vms:
        t.add_row(
            v.name,
            hosts.get(v.host or "", "-"),
            v.power_state.value,
            "\n".join(_nic(n, pg_names) for n in v.nics) or "-",
            "OVS VM" if v.moref in ovs else "",
        )
    console.print(t)

    t = Table(title="OVS VMs (transport nodes)")
    for col in ("OVS VM", "host", "power", "trunk vNICs"):
        t.add_column(col)
    for o in ovs_vms:
        t.add_row(
            o.name,
            hosts.get(o.host or "", "-"),
            o.power_state.value,
            "\n".join(_nic(n, pg_names) for n in o.trunk_nics) or "none",
        )
    console.print(t)
