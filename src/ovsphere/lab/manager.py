"""The lab's manager: its settings file, and the process ``lab up`` starts.

The lab agent starts ``ovsphere --lab NAME manager run`` once the lab is
built, as a recorded lab process (so ``down`` ends it, and the agent, a
child subreaper, reaps it).  Its settings, ``ovsphere.toml`` in the lab's
state directory, say where the NB is (a unix socket), what ovn-controller
on each OVS VM is told (the SB over the management network, its underlay
address as tunnel endpoint), and how to reach each OVS VM's ovsdb-server (a
unix socket: path-based sockets reach across namespaces).  ``--lab NAME``
makes every ovsphere command read the same file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ovsphere.config import Settings, load_settings
from ovsphere.lab.layout import Layout
from ovsphere.lab.state import LabState, ProcessRecord

#: the lab's physical network: the underlay, for networks made with --transport vlan:physnet:ID
PHYSNET = "physnet"


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string


def config_text(layout: Layout, state: LabState) -> str:
    topo = layout.topology
    lines = [
        "# Written by `ovsphere lab up`: the lab's manager settings.",
        f"nb = {_q(state.record.info['nb'])}",
        f"sb = {_q(layout.sb_remote())}",
        f"manager_sb = {_q(state.record.info['sb'])}",
        'transport_interface = "br-phy"',
        f"transport_mtu = {topo.underlay_mtu}",
        "resync_interval = 10",
        "",
        "[isolated]",
        *(f"{_q(sw.name)} = {_q(sw.portgroup)}" for sw in topo.switches),
    ]
    for node in layout.ovs_vms:
        sock = state.node_dir(node) / "run" / "db.sock"
        lines += [
            "",
            f"[transport_nodes.{_q(node)}]",
            f"ovsdb = {_q(f'unix:{sock}')}",
            f"encap_ip = {_q(str(layout.underlay_ip(node)))}",
            # VLAN-transport networks leave through the underlay bridge, tagged
            f"bridge_mappings = {{ {PHYSNET} = \"br-phy\" }}",
        ]
    return "\n".join(lines) + "\n"


def write_config(layout: Layout, state: LabState) -> Path:
    path = state.dir / "ovsphere.toml"
    path.write_text(config_text(layout, state))
    return path


def manager_argv(name: str) -> list[str]:
    return [sys.executable, "-m", "ovsphere", "--lab", name, "manager", "run", "--log-json"]


def start_manager(state: LabState, label: str = "manager") -> ProcessRecord:
    """Start a manager of the lab in the background, its log in ``<label>.log``."""
    log = open(state.dir / f"{label}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        manager_argv(state.name),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    record = ProcessRecord(f"lab/{label}", proc.pid, Path(sys.executable).name)
    state.add_process(record)
    return record


def lab_settings(state: LabState) -> Settings:
    """The settings the lab's manager runs with (vCenter, NB, transport nodes)."""
    from ovsphere.lab.up import endpoint  # up imports this module's callers

    return load_settings(
        {"vcenter": endpoint(state), "insecure": True},
        environ={},
        config_file=state.dir / "ovsphere.toml",
    )
