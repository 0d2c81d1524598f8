"""``ovsphere status``: every VM NIC of the isolated port groups and its state."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.manager import operations
from ovsphere.model import to_jsonable

COLOURS = {"bound": "green", "pending": "yellow", "migrating": "cyan", "error": "red"}


@reports_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Per VM NIC: VM, NIC, MAC, vDS, VLAN, host, OVS VM, network, state and why."""
    cli = cli_context(ctx)
    s = cli.settings()
    with cli.connection() as vc, cli.nb() as nb:
        rows = operations.status(vc, nb, s)
    if as_json:
        print(json.dumps([to_jsonable(r) for r in rows], indent=2))
        return
    table = Table("VM", "NIC", "MAC", "vDS", "VLAN", "host", "OVS VM", "network", "state")
    for r in rows:
        colour = COLOURS.get(r.state, "white")
        state = f"[{colour}]{r.state}[/]" + (f" ({r.reason})" if r.reason else "")
        table.add_row(
            r.vm,
            str(r.nic),
            r.mac,
            r.vds,
            str(r.vlan or ""),
            r.host,
            r.chassis or "",
            r.network or "",
            state,
        )
    console.print(table)
