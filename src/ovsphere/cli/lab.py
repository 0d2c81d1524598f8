"""``ovsphere lab``: the emulated datacenter (test bed and demo)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ovsphere.cli.context import cli_context, console, reports_errors
from ovsphere.errors import NotFoundError, PreconditionError
from ovsphere.lab import netlink
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import load_topology
from ovsphere.lab.vms import NicSpec, create_vm
from ovsphere.vsphere.connection import Connection
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


def _state(name: str) -> LabState:
    state = LabState(name)
    if not state.exists:
        raise NotFoundError(f"no lab named {name!r} is up", fix="run `ovsphere lab up`")
    return state


NameOption = Annotated[str, typer.Option("--name", help="the lab's name (its topology's name)")]


@app.command()
@reports_errors
def up(
    topology: Annotated[
        Path | None, typer.Argument(help="topology YAML (default: built in)")
    ] = None,
) -> None:
    """Build the lab (idempotent); print how long it took and how to reach it."""
    from ovsphere.lab.up import up as lab_up

    topo = load_topology(topology)
    report = lab_up(topo, log=lambda line: console.print(f"  {line}", highlight=False))
    if report.already_up:
        console.print(f"lab {report.name} is already up ({report.seconds:.1f} s to check)")
    else:
        console.print(f"lab {report.name} is up in {report.seconds:.1f} s")
    console.print(f"  vCenter (simulator): {report.vcenter_url}; state in {report.state_dir}")
    console.print(
        f"  ovsphere lab status --name {report.name}; ovsphere lab down --name {report.name}"
    )


@app.command()
@reports_errors
def down(name: NameOption = "lab") -> None:
    """Remove every namespace, process and file the lab made (works after a crash)."""
    from ovsphere.lab.down import down as lab_down

    state = LabState(name)
    removed = lab_down(state)
    console.print(
        f"lab {name}: removed {len(removed)} things"
        if removed
        else f"lab {name}: nothing to remove"
    )


@app.command()
@reports_errors
def status(
    name: NameOption = "lab",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Nodes, processes and how to reach the lab's vCenter and OVN."""
    from ovsphere.lab.daemons import is_running

    state = _state(name)
    info = state.record.info
    data = {
        "name": name,
        "complete": info.get("complete", False),
        "state_dir": str(state.dir),
        "vcenter": f"https://127.0.0.1:{info.get('vcenter_port')}/sdk",
        "nb": info.get("nb"),
        "sb": info.get("sb"),
        "namespaces": [
            {"name": ns, "exists": netlink.exists(ns)} for ns in state.record.namespaces
        ],
        "processes": [
            {"name": p.name, "pid": p.pid, "running": is_running(p)} for p in state.record.processes
        ],
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(
        f"lab {name}: {'up' if data['complete'] else 'incomplete'}; "
        f"vCenter {data['vcenter']}; NB {data['nb']}"
    )
    table = Table("process", "pid", "running")
    for p in data["processes"]:
        table.add_row(p["name"], str(p["pid"]), "yes" if p["running"] else "[red]no[/]")
    console.print(table)
    console.print("namespaces: " + " ".join(n["name"] for n in data["namespaces"]))


@app.command(
    name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@reports_errors
def exec_(
    node: Annotated[str, typer.Argument(help="a node: esx1, ovs-esx1, vm1, kvm1, central ...")],
    command: Annotated[list[str], typer.Argument(help="the command, after --")],
    name: NameOption = "lab",
) -> None:
    """Run a command inside a node's namespace (with its OVS environment)."""
    from ovsphere.lab.daemons import NodeDirs

    state = _state(name)
    ns = f"{name}-{node}"
    if ns not in state.record.namespaces:
        nodes = ", ".join(n.removeprefix(f"{name}-") for n in state.record.namespaces)
        raise NotFoundError(f"lab {name} has no node {node!r}", fix=f"one of: {nodes}")
    env = NodeDirs(state.dir / node).env() if (state.dir / node).is_dir() else dict(os.environ)
    os.execvpe("ip", ["ip", "netns", "exec", ns, *command], env)


@app.command()
@reports_errors
def vmotion(
    vm: Annotated[str, typer.Argument(help="the VM's name")],
    host: Annotated[str, typer.Argument(help="the destination ESX host")],
    name: NameOption = "lab",
) -> None:
    """Migrate a VM to another host (MigrateVM_Task); the lab's data plane follows."""
    from ovsphere.lab.up import endpoint
    from ovsphere.lab.vmotion import migrate, wait_for_move

    state = _state(name)
    with Connection(endpoint(state), verify_tls=False) as conn:
        seconds = migrate(conn, vm, host)
    follow = wait_for_move(state.dir, vm, host)
    console.print(f"{vm} is on {host}: vCenter took {seconds:.2f} s, the lab's links followed "
                  f"{follow:.2f} s later")


@app.command()
@reports_errors
def capture(
    node: Annotated[str, typer.Argument(help="the node")],
    iface: Annotated[str, typer.Argument(help="interface (default: any)")] = "any",
    name: NameOption = "lab",
    count: Annotated[int | None, typer.Option(help="stop after N packets")] = None,
) -> None:
    """tcpdump inside a node into a pcap file in the lab's state directory (Ctrl-C stops)."""
    state = _state(name)
    out = state.dir / "captures" / f"{node}-{iface}-{int(time.time())}.pcap"
    out.parent.mkdir(exist_ok=True)
    argv = [
        "ip",
        "netns",
        "exec",
        f"{name}-{node}",
        "tcpdump",
        "-n",
        "-i",
        iface,
        "-w",
        str(out),
        *(["-c", str(count)] if count else []),
    ]
    console.print(f"capturing into {out}")
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(argv, check=False)


@app.command(hidden=True)
def agent(
    name: NameOption = "lab",
    build: Annotated[bool, typer.Option(help="build the lab first")] = False,
) -> None:
    """The lab agent: builds the lab (with --build), then keeps it following vCenter."""
    from ovsphere.lab.agent import Agent, Status, become_subreaper
    from ovsphere.lab.layout import Layout
    from ovsphere.lab.manager import start_manager, write_config
    from ovsphere.lab.topology import Topology
    from ovsphere.lab.up import build as build_lab
    from ovsphere.lab.up import endpoint
    from ovsphere.logging import configure_logging

    configure_logging(level=logging.INFO)
    become_subreaper()
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    state = _state(name)
    layout = Layout(Topology.model_validate(state.record.info["topology"]))
    status = Status(state.dir / "agent.json")
    if build:
        try:
            build_lab(layout, state, status.say)
        except Exception as exc:  # reported to `lab up` through agent.json, then we end
            logging.getLogger("ovsphere.lab").exception("lab build failed")
            status.save(0, error=f"{type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None
        state = LabState(name)
        write_config(layout, state)
        if layout.topology.manager:
            start_manager(state)
        state = LabState(name)
    with Connection(endpoint(state), verify_tls=False) as conn:
        Agent(layout, state, conn, status).run(until=lambda: bool(stopping))


@app.command()
@reports_errors
def demo(name: NameOption = "lab") -> None:
    """The whole story through the lab's manager: networks, attach, DHCP, pings, vMotion."""
    from ovsphere.lab.demo import run_demo

    start = time.monotonic()
    run_demo(name, lambda line: console.print(line, highlight=False))
    console.print(
        f"\nThe demo took {time.monotonic() - start:.1f} s. The lab is up; reach it with:\n"
        f"  ovsphere --lab {name} status | network list | attach VM NET | detach VM\n"
        f"  ovsphere lab status --name {name}\n"
        f"  ovsphere lab exec --name {name} vm1 -- ip addr     (any node: esx1, ovs-esx1, "
        f"vm2, kvm1, central ...)\n"
        f"  ovsphere lab vmotion --name {name} vm1 esx3\n"
        f"  the manager's log: {LabState(name).dir / 'manager.log'}\n"
        f"Take it down with:\n  ovsphere lab down --name {name}",
        highlight=False,
    )
