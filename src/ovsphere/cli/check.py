"""``ovsphere check``: the preflight, one line per setting the trick depends on."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.logic.checks import CheckInput, Status, failed, run_checks
from ovsphere.model import to_jsonable
from ovsphere.vsphere.prepare import read_state

_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


@reports_errors
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check every vSphere setting the trick depends on; exit 1 on any FAIL."""
    cli = cli_context(ctx)
    s = cli.settings()
    with cli.connection() as conn:
        state = read_state(conn, s.dvs, s.portgroup, cli.ovs_vm_rule())
    results = run_checks(
        CheckInput(
            inventory=state.inventory,
            switch_name=state.switch.name,
            portgroup_name=s.portgroup,
            ports=state.ports,
            ovs_vms=state.ovs_vms,
            trunk=s.trunk,
        )
    )
    if as_json:
        print(
            json.dumps(
                {
                    "switch": state.switch.name,
                    "portgroup": s.portgroup,
                    "ok": not failed(results),
                    "checks": to_jsonable(results),
                },
                indent=2,
            )
        )
    else:
        for c in results:
            console.print(
                f"[{_STYLE[c.status]}]{c.status.value}[/] {c.name}: {c.detail}", highlight=False
            )
            if c.fix and c.status is not Status.PASS:
                console.print(f"      fix: {c.fix}", highlight=False)
    if failed(results):
        raise typer.Exit(1)
