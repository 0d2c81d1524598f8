"""vMotion in the lab: vCenter moves the VM, the lab's data plane follows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ovsphere.testing.lab import TEST_LAB, wait_for_ping
from ovsphere.vsphere.ports import PortQuery, fetch_ports

pytestmark = pytest.mark.lab


def port(lab, vm_name):
    inv = lab.inventory()
    vm = next(v for v in inv.vms if v.name == vm_name)
    nic = vm.nics[0]
    switch = next(s for s in inv.switches if s.uuid == nic.backing.switch_uuid)
    with lab.connection() as conn:
        (p,) = fetch_ports(conn, switch.moref, PortQuery(keys=[nic.backing.port_key]))
    host = next(h.name for h in inv.hosts if h.moref == vm.host)
    return host, p


def plug_kvm_vm(lab, vm, tap, network, ip):
    mac = lab.run(vm, "cat", "/sys/class/net/eth0/address").stdout.strip()
    lab.configure_transport("kvm1")
    lab.nbctl(
        "--may-exist",
        "ls-add",
        network,
        "--",
        "--may-exist",
        "lsp-add",
        network,
        vm,
        "--",
        "lsp-set-addresses",
        vm,
        f"{mac} {ip.split('/')[0]}",
        "--",
        "lsp-set-options",
        vm,
        "requested-chassis=kvm1",
    )
    lab.run("kvm1", "ovs-vsctl", "set", "interface", tap, f"external_ids:iface-id={vm}")
    lab.run(vm, "ip", "addr", "replace", ip, "dev", "eth0")


def test_vmotion_keeps_dvport_and_vlan_and_the_data_plane_follows(lab):
    b6 = lab.bind("vm6", "mig", 206, "10.3.0.6/24")  # on esx3
    plug_kvm_vm(lab, "kvm-vm2", "tap1", "mig", "10.3.0.2/24")  # its peer, on kvm1
    wait_for_ping(lab, "vm6", "10.3.0.2")
    host, before = port(lab, "vm6")
    assert host == "esx3"

    result = subprocess.run(
        [sys.executable, "-m", "ovsphere", "lab", "vmotion", "vm6", "esx1", "--name", TEST_LAB],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

    host, after = port(lab, "vm6")
    assert host == "esx1"
    assert after.key == before.key and after.setting.vlan_id == 206
    assert after.connectee.vm == before.connectee.vm
    # The VM's link now ends on esx1's proxy switch, on the same dvPort.
    ports = lab.run("esx1", "ovs-vsctl", "list-ports", "vds0").stdout.split()
    assert f"p0-{after.key}" in ports
    assert f"p0-{after.key}" not in lab.run("esx3", "ovs-vsctl", "list-ports", "vds0").stdout
    # The test re-pins the OVN port (the manager's job): traffic flows from esx1.
    lab.pin(b6.logical_port, 206, "esx1", mac=b6.mac, previous="esx3")
    wait_for_ping(lab, "vm6", "10.3.0.2")
    assert lab.ping("vm6", "10.3.0.2", count=5) == 5
