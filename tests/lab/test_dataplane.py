"""Two vSphere VMs on different ESX hosts, one logical network, real packets."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ovsphere.testing.lab import wait_for_no_ping, wait_for_ping

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def net1(lab):
    b1 = lab.bind("vm1", "net1", 101, "10.1.0.1/24")  # on esx1
    b2 = lab.bind("vm2", "net1", 102, "10.1.0.2/24")  # on esx2
    assert b1.host != b2.host
    wait_for_ping(lab, "vm1", "10.1.0.2")
    return b1, b2


def test_geneve_ping_and_iperf_across_hosts(lab, net1):
    assert lab.ping("vm1", "10.1.0.2", count=5) == 5
    tunnels = lab.run(
        "ovs-esx1", "ovs-vsctl", "--columns=type", "find", "interface", "type=geneve"
    ).stdout
    assert "geneve" in tunnels
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("vm2"), "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20  # until the server listens (slow on a busy machine)
        while True:
            result = lab.run("vm1", "iperf3", "-c", "10.1.0.2", "-t", "2", "-J", check=False)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert result.returncode == 0, result.stdout[-500:]
        report = json.loads(result.stdout)
        bits = report["end"]["sum_received"]["bits_per_second"]
        assert bits > 10e6, f"{bits / 1e6:.1f} Mbit/s through the lab"
    finally:
        server.kill()
        server.wait()


def test_vms_keep_a_1500_mtu_through_the_tunnel(lab, net1):
    # 1472 bytes of ICMP payload + 28 of headers = a full 1500-byte frame, not fragmented.
    result = lab.run(
        "vm1",
        "ping",
        "-n",
        "-q",
        "-M",
        "do",
        "-s",
        "1472",
        "-c",
        "3",
        "-W",
        "1",
        "10.1.0.2",
        check=False,
    )
    assert " 3 received" in result.stdout, result.stdout + result.stderr


def test_another_network_cannot_reach_them(lab, net1):
    lab.bind("vm5", "net2", 105, "10.1.0.5/24")  # same subnet, other logical switch
    wait_for_no_ping(lab, "vm1", "10.1.0.5")
    assert lab.ping("vm5", "10.1.0.2", count=3) == 0
    assert lab.ping("vm1", "10.1.0.2", count=3) == 3


def test_a_kvm_vm_shares_the_network(lab, net1):
    mac = lab.run("kvm-vm1", "cat", "/sys/class/net/eth0/address").stdout.strip()
    lab.configure_transport("kvm1")
    lab.nbctl(
        "--may-exist",
        "lsp-add",
        "net1",
        "kvm-vm1",
        "--",
        "lsp-set-addresses",
        "kvm-vm1",
        f"{mac} 10.1.0.21",
        "--",
        "lsp-set-options",
        "kvm-vm1",
        "requested-chassis=kvm1",
    )
    lab.run("kvm1", "ovs-vsctl", "set", "interface", "tap0", "external_ids:iface-id=kvm-vm1")
    lab.run("kvm-vm1", "ip", "addr", "replace", "10.1.0.21/24", "dev", "eth0")
    wait_for_ping(lab, "kvm-vm1", "10.1.0.1")
    wait_for_ping(lab, "vm2", "10.1.0.21")  # the first ping waits for ARP
    assert lab.ping("vm2", "10.1.0.21", count=3) == 3


def test_vxlan_works_too(lab, net1):
    for node in lab.layout.transport_nodes:
        lab.configure_transport(node, encap="vxlan")
    try:

        def vxlan_ready():
            out = lab.run(
                "ovs-esx1", "ovs-vsctl", "--columns=type", "find", "interface", "type=vxlan"
            ).stdout
            return "vxlan" in out

        for _ in range(100):
            if vxlan_ready():
                break
            lab.ping("vm1", "10.1.0.2", count=1, wait=0.1)
        assert vxlan_ready(), "ovn-controller made no VXLAN tunnel"
        wait_for_ping(lab, "vm1", "10.1.0.2")
        assert lab.ping("vm1", "10.1.0.2", count=5) == 5
    finally:
        for node in lab.layout.transport_nodes:
            lab.configure_transport(node, encap="geneve")
