"""lab up / down: idempotence, validation before creation, and down after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovsphere.lab.daemons import is_running
from ovsphere.lab.state import LabState, state_root
from ovsphere.lab.up import up
from ovsphere.testing.lab import lab_topology, unique_name

pytestmark = pytest.mark.lab


def ovsphere(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "ovsphere", *args], capture_output=True, text=True, timeout=300, **kw
    )


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_up_again_leaves_a_running_lab_alone(lab):
    before = [(p.name, p.pid) for p in lab.state.record.processes]
    report = up(lab_topology(), log=lambda line: None)
    assert report.already_up
    assert [(p.name, p.pid) for p in LabState(lab.state.name).record.processes] == before


def test_a_bad_topology_is_refused_before_anything_is_made(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nhosts: [esx1]\nswitches:\n  - name: dvs0\nvms:\n  - name: vm1\n    host: esx7\n"
    )
    result = ovsphere("lab", "up", str(bad))
    assert result.returncode == 2
    assert f"{bad}:7" in result.stderr and "esx7" in result.stderr
    assert not (state_root() / "bad").exists()
    assert not any(ns.startswith("bad-") for ns in netns_names())


def test_down_after_a_killed_up_leaves_nothing(tmp_path):
    name = unique_name("k")
    topo = tmp_path / "kill.yaml"
    topo.write_text(
        f"name: {name}\nhosts: [esx1, esx2]\nswitches: [{{name: dvs0}}]\n"
        "vms: [{name: vm1, host: esx1}, {name: vm2, host: esx2}]\n"
    )
    links_before = root_links()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovsphere", "lab", "up", str(topo)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_file = state_root() / name / "state.json"
    deadline = time.monotonic() + 120
    # Kill it in the middle: once some OVS daemons run, before the lab is complete.
    while time.monotonic() < deadline:
        try:
            record = json.loads(state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = {}
        if sum("ovs-vswitchd" in p["name"] for p in record.get("processes", [])) >= 2:
            break
        time.sleep(0.02)
    else:
        pytest.fail("lab up made no OVS daemons in 120 s")
    state = LabState(name)
    assert state.record.info.get("complete") is not True
    proc.kill()
    for p in state.record.processes:  # the lab's own process too: a crash
        if p.name == "lab/agent" and is_running(p):
            os.kill(p.pid, signal.SIGKILL)
    proc.wait()
    recorded = LabState(name).record.processes  # everything the crashed lab had made
    assert any(is_running(p) for p in recorded)  # orphans, until down

    result = ovsphere("lab", "down", "--name", name)
    assert result.returncode == 0, result.stderr
    assert not any(ns.startswith(f"{name}-") for ns in netns_names())
    assert not state.dir.exists()
    for p in recorded:
        assert not is_running(p), f"{p.name} ({p.pid}) still runs"
    assert root_links() <= links_before, root_links() - links_before


def test_a_clustered_ovn_central_lab_carries_traffic(tmp_path):
    from ovsphere.lab.down import down as lab_down
    from ovsphere.lab.manager import lab_settings
    from ovsphere.lab.manual import LabControl
    from ovsphere.lab.topology import load_topology
    from ovsphere.manager import operations
    from ovsphere.ovn.connection import NbClient
    from ovsphere.testing.lab import wait_for_ping
    from ovsphere.vsphere.connection import Connection

    clustered = load_topology(Path(__file__).parents[2] / "examples" / "clustered.yaml")
    topo = clustered.model_copy(update={"name": unique_name("c")})
    try:
        up(topo, log=lambda line: None)
        lab = LabControl(topo.name)
        assert len(lab.layout.namespaces) > 0 and lab.layout.central_members == 3
        status = lab.run("central", "ovn-appctl", "-t",
                         str(lab.state.dir / "central0" / "run" / "nb.ctl"), "cluster/status",
                         "OVN_Northbound").stdout
        assert status.count("tcp:10.78.0.") >= 3
        # The lab's manager binds the VMs through the 3-member NB cluster.
        settings = lab_settings(lab.state)
        with Connection(lab.connection().endpoint, verify_tls=False) as vc, \
                NbClient(settings.require_nb()) as nb:
            operations.create_network(nb, "ha", cidr="10.4.0.0/24")
            for vm in ("vm1", "vm2"):
                operations.attach(vc, nb, settings, vm, "ha")

            def bound() -> tuple[bool, str]:
                rows = [r for r in operations.status(vc, nb, settings) if r.network == "ha"]
                return len(rows) == 2 and all(r.state == "bound" for r in rows), str(rows)

            operations.wait_for(bound, timeout=60)
        lab.dhcp("vm1")
        wait_for_ping(lab, "vm1", lab.dhcp("vm2"))
    finally:
        lab_down(LabState(topo.name))
