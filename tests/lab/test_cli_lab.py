"""The lab's CLI verbs against the session lab: status, exec, capture."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ovsphere.testing.lab import TEST_LAB, wait_for_ping

pytestmark = pytest.mark.lab


def ovsphere(verb, *args):
    return subprocess.run(
        [sys.executable, "-m", "ovsphere", "lab", verb, "--name", TEST_LAB, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_json_lists_every_process_running(lab):
    result = ovsphere("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["complete"] is True
    assert all(p["running"] for p in data["processes"])
    names = {p["name"] for p in data["processes"]}
    assert {
        "lab/agent",
        "vcenter/vcsim",
        "central0/ovn-northd",
        "esx1/ovs-vswitchd",
        "ovs-esx1/ovn-controller",
        "kvm1/ovn-controller",
    } <= names
    assert all(n["exists"] for n in data["namespaces"])
    assert lab.state.record.info["vcenter_password"] not in result.stdout


def test_exec_runs_inside_a_node_with_its_ovs(lab):
    result = ovsphere("exec", "ovs-esx1", "--", "ovs-vsctl", "br-exists", "br-phy")
    assert result.returncode == 0, result.stderr
    result = ovsphere("exec", "vm1", "--", "ip", "-o", "link", "show", "eth0")
    assert result.returncode == 0 and "eth0" in result.stdout
    result = ovsphere("exec", "nowhere", "--", "true")
    assert result.returncode == 1 and "no node 'nowhere'" in result.stderr


def test_capture_writes_a_pcap(lab):
    lab.bind("vm1", "net1", 101, "10.1.0.1/24")
    lab.bind("vm2", "net1", 102, "10.1.0.2/24")
    wait_for_ping(lab, "vm1", "10.1.0.2")
    capture = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ovsphere",
            "lab",
            "capture",
            "ovs-esx1",
            "eth0",
            "--count",
            "4",
            "--name",
            TEST_LAB,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(20):
            lab.ping("vm1", "10.1.0.2", count=2, interval=0.2)
            if capture.poll() is not None:
                break
        out, _ = capture.communicate(timeout=30)
    finally:
        capture.kill()
    path = out.split("capturing into ")[1].split()[0]
    read = subprocess.run(["tcpdump", "-n", "-e", "-r", path], capture_output=True, text=True)
    assert "vlan 101" in read.stdout, read.stdout + read.stderr
