"""``ovsphere network create | list | delete``: OVN logical switches for VM NICs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.manager import operations
from ovsphere.model import to_jsonable

app = typer.Typer(help="Virtual networks (OVN logical switches).", no_args_is_help=True)


@app.command()
@reports_errors
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the network's name")],
    vni: Annotated[int | None, typer.Option(help="tunnel key (VNI) to use")] = None,
    cidr: Annotated[
        str | None, typer.Option(help="IPv4 subnet: OVN's DHCP serves its addresses")
    ] = None,
    transport: Annotated[
        str, typer.Option(help="geneve, vxlan, or vlan:PHYSNET:ID (a localnet port)")
    ] = "geneve",
) -> None:
    """Create a network (idempotent when it exists with the same settings)."""
    cli = cli_context(ctx)
    with cli.nb() as nb:
        net = operations.create_network(
            nb,
            name,
            vni=vni,
            cidr=cidr,
            transport=transport,
            transport_mtu=cli.settings().transport_mtu,
        )
    extra = f", DHCP on {net.cidr}" if net.cidr else ""
    console.print(f"network {net.name}: {net.transport}{extra}", highlight=False)


@app.command("list")
@reports_errors
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """The networks, with how many VM NICs each has."""
    cli = cli_context(ctx)
    with cli.nb() as nb:
        nets = operations.list_networks(nb)
    if as_json:
        print(json.dumps([{**to_jsonable(n), "ports": count} for n, count in nets], indent=2))
        return
    table = Table("network", "transport", "VNI", "CIDR", "ports", "state")
    for n, count in nets:
        table.add_row(
            n.name,
            n.transport,
            str(n.vni or "auto"),
            n.cidr or "",
            str(count),
            "deleting" if n.deleting else "",
        )
    console.print(table)


@app.command()
@reports_errors
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the network's name")],
    force: Annotated[
        bool, typer.Option(help="with ports attached: the manager releases them, then deletes")
    ] = False,
) -> None:
    """Delete a network (refused while VM NICs are attached, unless --force)."""
    cli = cli_context(ctx)
    with cli.nb() as nb:
        ports = operations.delete_network(nb, name, force=force)
    if ports:
        console.print(
            f"network {name} is marked for deletion: the manager releases its {len(ports)} "
            "ports (blocks their dvPorts first), then deletes it",
            highlight=False,
        )
    else:
        console.print(f"network {name} deleted", highlight=False)
