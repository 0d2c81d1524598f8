"""``ovsphere vcenter sim``: the extended vCenter simulator in the foreground."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from ovsphere.cli.context import console, reports_errors

app = typer.Typer(help="vCenter tools (the simulator for tests and the lab).", no_args_is_help=True)


@app.command()
@reports_errors
def sim(
    port: Annotated[int, typer.Option(help="TCP port (0: any free port)", min=0, max=65535)] = 0,
    listen: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    hosts: Annotated[int, typer.Option(help="ESX hosts per cluster", min=0)] = 3,
    clusters: Annotated[int, typer.Option(help="clusters", min=0)] = 1,
    vms: Annotated[int, typer.Option(help="VMs per resource pool", min=0)] = 2,
    precopy: Annotated[float, typer.Option(help="vMotion pre-copy seconds", min=0)] = 1.0,
    user: Annotated[str, typer.Option(help="login user")] = "ovsphere",
    password: Annotated[
        str, typer.Option(help="login password", envvar="OVSPHERE_SIM_PASSWORD")
    ] = "ovsphere",
) -> None:
    """Build (when needed) and run VMware's vCenter simulator, extended by ovsphere."""
    from ovsphere.lab.simulator import Simulator, SimulatorOptions, build_simulator

    options = SimulatorOptions(
        listen=listen,
        port=port,
        hosts=hosts,
        clusters=clusters,
        vms=vms,
        precopy=precopy,
        user=user,
        password=password,
    )
    with console.status("building the simulator (cached after the first time)"):
        binary = build_simulator()
    sim = Simulator.start(options, binary=binary)
    console.print(f"vCenter simulator at [bold]{sim.url}[/] (pid {sim.pid}), user {user!r}")
    console.print(
        f"  export OVSPHERE_VCENTER=https://{user}:PASSWORD@{sim.host}:{sim.port}/sdk "
        "OVSPHERE_INSECURE=1",
        highlight=False,
    )
    console.print("Ctrl-C stops it.")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sim.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM ends the foreground simulator the same way Ctrl-C does.
    raise KeyboardInterrupt
