"""The ``ovsphere`` command: global options, then one module per command group."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ovsphere.cli import (
    attach,
    check,
    inventory,
    lab,
    manager,
    network,
    prepare,
    status,
    vcenter,
    watch,
)
from ovsphere.cli.context import CliContext
from ovsphere.logging import configure_logging

app = typer.Typer(
    name="ovsphere",
    help="Put vSphere VMs on Open vSwitch / OVN networks: one OVS VM per ESX host, "
    "one VLAN per VM port.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file", show_default=False)
    ] = None,
    vcenter_url: Annotated[
        str | None,
        typer.Option(
            "--vcenter",
            help="https://USER:PASSWORD@HOST[:PORT]/sdk (or OVSPHERE_VCENTER)",
            show_default=False,
        ),
    ] = None,
    insecure: Annotated[
        bool | None,
        typer.Option(
            "--insecure/--verify-tls",
            help="skip vCenter TLS certificate verification",
            show_default=False,
        ),
    ] = None,
    dvs: Annotated[str | None, typer.Option(help="the vDS to use (or OVSPHERE_DVS)")] = None,
    nb: Annotated[
        str | None,
        typer.Option("--nb", help="the OVN northbound DB, e.g. tcp:IP:6641 (or OVSPHERE_NB)",
                     show_default=False),
    ] = None,
    portgroup: Annotated[
        str | None, typer.Option(help="the isolated port group's name (or OVSPHERE_PORTGROUP)")
    ] = None,
    lab: Annotated[
        str | None,
        typer.Option("--lab", help="use a running lab's vCenter (ovsphere lab up)",
                     show_default=False),
    ] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="more logging")] = 0,
    log_json: Annotated[bool, typer.Option(help="log one JSON object a line")] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    configure_logging(level=level, json_lines=log_json)
    ctx.obj = CliContext(
        flags={
            "vcenter": vcenter_url,
            "insecure": insecure,
            "dvs": dvs,
            "portgroup": portgroup,
            "nb": nb,
        },
        config_file=config,
        lab=lab,
    )


app.add_typer(vcenter.app, name="vcenter")
app.add_typer(lab.app, name="lab")
app.add_typer(network.app, name="network")
app.add_typer(manager.app, name="manager")
app.command("attach")(attach.attach)
app.command("detach")(attach.detach)
app.command("status")(status.status)
app.command("inventory")(inventory.inventory)
app.command("prepare")(prepare.prepare)
app.command("check")(check.check)
app.command("watch")(watch.watch)
