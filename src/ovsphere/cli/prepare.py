"""``ovsphere prepare``: create or repair the isolated port group and its ports."""

from __future__ import annotations

from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.config import parse_vlan_ranges
from ovsphere.errors import ConfigError
from ovsphere.vsphere import prepare as vsphere_prepare


@reports_errors
def prepare(
    ctx: typer.Context,
    trunk: Annotated[
        str | None, typer.Option(help="VLAN ranges the OVS VM trunks carry, e.g. 0-4094")
    ] = None,
    min_ports: Annotated[int | None, typer.Option(help="at least this many ports", min=1)] = None,
    remove_uplinks: Annotated[
        bool, typer.Option(help="strip uplinks from an existing port group's teaming")
    ] = False,
) -> None:
    """Create or repair the isolated port group; shape OVS VM trunk and VM ports."""
    cli = cli_context(ctx)
    s = cli.settings()
    try:
        ranges = parse_vlan_ranges(trunk) if trunk else s.trunk
    except ValueError as exc:
        raise ConfigError(f"--trunk: {exc}") from None
    with cli.connection() as conn:
        report = vsphere_prepare.prepare(
            conn,
            dvs=s.dvs,
            portgroup=s.portgroup,
            rule=cli.ovs_vm_rule(),
            trunk=ranges,
            min_ports=min_ports or s.min_ports,
            remove_uplinks=remove_uplinks,
        )
    where = f"{report.portgroup} on {report.switch}"
    if report.created:
        console.print(f"created port group {where}")
    for change in report.portgroup_changes:
        console.print(f"repaired {where}: {change}")
    for edit in report.port_edits:
        console.print(f"port {edit.key}: {edit.reason}", highlight=False)
    console.print(f"{len(report.port_edits)} ports changed in {report.tasks} vCenter tasks")
    if report.waiting:
        console.print(
            f"{len(report.waiting)} VM ports stay blocked until they get a VLAN: "
            + ", ".join(report.waiting[:20])
        )
