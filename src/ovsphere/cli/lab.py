"""``ovsphere lab``: the emulated datacenter (test bed and demo)."""

from __future__ import annotations

from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.errors import PreconditionError
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.prepare import choose_switch

app = typer.Typer(help="The lab: an emulated vSphere datacenter.", no_args_is_help=True)


@app.command()
@reports_errors
def seed(
    ctx: typer.Context,
    vms: Annotated[int, typer.Option(help="application VMs to create", min=0)] = 2,
) -> None:
    """Deploy one OVS VM per member host and some VMs onto the isolated port group.

    What an operator does by hand after `prepare` (deploying the OVS VM
    appliance on each host); skips VMs that already exist.
    """
    cli = cli_context(ctx)
    s = cli.settings()
    with cli.connection() as conn:
        inv = read_inventory(conn)
        switch = choose_switch(inv, s.dvs)
        pg = inv.portgroup_named(switch, s.portgroup)
        if pg is None:
            raise PreconditionError(
                f"no port group {s.portgroup} on {switch.name}", fix="run `ovsphere prepare` first"
            )
        names = {v.name for v in inv.vms}
        hosts = [h for h in inv.hosts if h.moref in switch.member_hosts]
        host_names = {h.moref: h.name for h in hosts}
        wanted = [(f"ovs-{h.name}", h.moref) for h in hosts]
        wanted += [(f"app-{i + 1}", hosts[i % len(hosts)].moref) for i in range(vms) if hosts]
        for name, host in wanted:
            if name in names:
                continue
            create_vm(conn, inv, name, host, [NicSpec(pg)])
            console.print(f"created {name} on {host_names[host]}")
