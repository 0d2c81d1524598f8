"""``ovsphere watch``: print vSphere changes as ovsphere sees them, until Ctrl-C."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.model import to_jsonable
from ovsphere.vsphere.watch import Watcher


@reports_errors
def watch(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line")] = False,
) -> None:
    """Stream VM, NIC, host, power, port and migration changes from vCenter."""
    cli = cli_context(ctx)
    with cli.connection() as conn:
        watcher = Watcher(conn)
        try:
            for change in watcher.changes():
                kind = type(change).__name__
                if as_json:
                    print(json.dumps({"change": kind, **to_jsonable(change)}), flush=True)
                else:
                    fields = {k: v for k, v in asdict(change).items() if k != "vm"}
                    vm = getattr(change, "vm", None)
                    name = vm if isinstance(vm, str) else getattr(vm, "name", "")
                    console.print(f"{kind} {name} {fields}", highlight=False)
        finally:
            watcher.close()
