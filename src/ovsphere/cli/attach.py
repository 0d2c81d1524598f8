"""``ovsphere attach | detach``: put a VM NIC on a network, or take it off."""

from __future__ import annotations

from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.manager import operations
from ovsphere.manager.desired import BOUND, UNATTACHED

NicOption = Annotated[
    str | None, typer.Option("--nic", help="the vNIC: device key or MAC (needed with 2+ NICs)")
]
WaitOption = Annotated[
    float, typer.Option(help="seconds to wait for the manager to finish (0: don't wait)")
]


@reports_errors
def attach(
    ctx: typer.Context,
    vm: Annotated[str, typer.Argument(help="VM name (or moref, or instance UUID)")],
    network: Annotated[str, typer.Argument(help="the network")],
    nic: NicOption = None,
    ip: Annotated[str | None, typer.Option(help="a fixed IPv4 address on the network")] = None,
    wait: WaitOption = 0,
) -> None:
    """Attach a VM NIC to a network: its VLAN is held now, the manager binds it."""
    cli = cli_context(ctx)
    s = cli.settings()
    with cli.connection() as vc, cli.nb() as nb:
        done = operations.attach(vc, nb, s, vm, network, nic=nic, ip=ip)
        port = done.port
        moved = " (moved onto the isolated port group)" if done.moved else ""
        console.print(
            f"{port.vm_name} NIC {port.nic} ({port.mac}) -> {network}: VLAN {port.vlan}, "
            f"port {port.name}{moved}",
            highlight=False,
        )
        if wait:

            def bound() -> tuple[bool, str]:
                mine = [x for x in operations.status(vc, nb, s) if x.port == port.name]
                st = mine[0] if mine else None
                text = f"{st.state} {st.reason}".strip() if st else "not seen"
                return (st is not None and st.state == BOUND), text

            console.print(f"bound: {operations.wait_for(bound, timeout=wait)}", highlight=False)


@reports_errors
def detach(
    ctx: typer.Context,
    vm: Annotated[str, typer.Argument(help="VM name (or moref, or instance UUID)")],
    nic: NicOption = None,
    wait: WaitOption = 0,
) -> None:
    """Detach a VM's NICs (or one): the manager blocks the dvPort, then frees the VLAN."""
    cli = cli_context(ctx)
    s = cli.settings()
    with cli.connection() as vc, cli.nb() as nb:
        names = operations.detach(vc, nb, vm, nic=nic)
        console.print(f"detaching {', '.join(names)}", highlight=False)
        if wait:

            def gone() -> tuple[bool, str]:
                left = [
                    x
                    for x in operations.status(vc, nb, s)
                    if x.port in names and x.state != UNATTACHED
                ]
                return not left, ", ".join(f"{x.port}: {x.state}" for x in left) or "released"

            console.print(operations.wait_for(gone, timeout=wait), highlight=False)
