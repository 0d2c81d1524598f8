"""Stale state: what vCenter takes away under ovsphere, and moves it did not see.

A VM deleted or a vNIC removed releases its VLAN, logical port and patch; a
network deleted with ``--force`` releases its ports first; a VM that changed
hosts while no manager ran is bound where it is now (the lab's
simulator has no HA, so "a host change without vMotion events" is a vMotion
the manager never saw); an OVS VM gone from its host turns that host's NICs to
errors that say so, and the manager goes on serving the other hosts.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pyVmomi import vim

from ovsphere.errors import OvsphereError
from ovsphere.manager import operations
from ovsphere.manager.desired import BOUND, ERROR
from ovsphere.ovn.networks import read_networks
from ovsphere.testing.crash import ManagerProcess, wait_converged
from ovsphere.testing.lab import CRASH_LAB, LabClients, wait_for_ping
from ovsphere.vsphere.tasks import wait_for_tasks

pytestmark = pytest.mark.lab

NET = "stale"


class World(LabClients):
    def __init__(self, lab) -> None:
        super().__init__(lab)
        self.attached: dict[str, str] = {}
        self.manager: ManagerProcess | None = ManagerProcess(lab, "manager-stale")

    def attach(self, vm: str) -> str:
        """Attach, wait until converged, return the VM's address (DHCP)."""
        operations.attach(self.vc, self.nb, self.settings, vm, NET)
        self.attached[vm] = NET
        self.converge()
        return self.lab.dhcp(vm)

    def converge(self) -> None:
        got = wait_converged(self.lab, self.attached)
        assert not got.problems, got.problems

    def moref(self, vm: str) -> str:
        return next(v.moref for v in self.lab.inventory().vms if v.name == vm)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.stop()
        super().close()


@pytest.fixture(scope="module")
def world(crash_lab):
    w = World(crash_lab)
    operations.create_network(w.nb, NET, cidr="10.55.0.0/24")
    yield w
    w.close()


def _destroy(w: World, name: str) -> None:
    moref = w.moref(name)

    def destroy(si: Any) -> None:
        vm = vim.VirtualMachine(moref, si._stub)
        wait_for_tasks(si, [vm.PowerOffVM_Task()], f"power off {name}")
        wait_for_tasks(si, [vm.Destroy_Task()], f"destroy {name}")

    w.vc.call(f"destroy {name}", destroy)


def test_a_deleted_vm_releases_its_vlan(world):
    world.attach("vm6")
    _destroy(world, "vm6")
    del world.attached["vm6"]
    world.converge()  # no port, no patch, its dvPort passes nothing


def test_a_removed_nic_releases_its_vlan(world):
    world.attach("vm5")
    vm = next(v for v in world.lab.inventory().vms if v.name == "vm5")

    def remove_nic(si: Any) -> None:
        ref = vim.VirtualMachine(vm.moref, si._stub)
        device = next(
            d for d in ref.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard) and d.key == vm.nics[0].key
        )
        change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
        spec = vim.vm.ConfigSpec(deviceChange=[change])
        wait_for_tasks(si, [ref.ReconfigVM_Task(spec=spec)], "remove vm5's NIC")

    world.vc.call("remove vm5's NIC", remove_nic)
    del world.attached["vm5"]
    world.converge()


def test_a_network_deleted_with_force_releases_its_ports_then_goes(world):
    operations.create_network(world.nb, "doomed", cidr="10.56.0.0/24")
    operations.attach(world.vc, world.nb, world.settings, "vm3", "doomed")
    world.attached["vm3"] = "doomed"
    world.converge()
    with pytest.raises(OvsphereError, match="attached"):
        operations.delete_network(world.nb, "doomed")  # refused while a port is attached
    operations.delete_network(world.nb, "doomed", force=True)
    del world.attached["vm3"]
    world.converge()  # vm3's VLAN released, its dvPort blocked, its patch gone

    def gone() -> tuple[bool, str]:
        names = [n.name for n in read_networks(world.nb)]
        return "doomed" not in names, str(names)

    operations.wait_for(gone, timeout=30)


def test_a_host_change_the_manager_did_not_see(world):
    peer = world.attach("vm2")
    world.attach("vm1")
    assert world.manager is not None
    world.manager.stop()
    result = subprocess.run(
        [sys.executable, "-m", "ovsphere", "lab", "vmotion", "vm1", "esx3", "--name", CRASH_LAB],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    world.manager = ManagerProcess(world.lab, "manager-stale-2")
    world.converge()  # pinned and patched on esx3, nothing left on esx1
    wait_for_ping(world.lab, "vm1", peer)


def test_an_ovs_vm_gone_is_reported_and_other_hosts_go_on(world):
    # vm1 is on esx3 now, vm2 on esx2.
    _destroy(world, "ovs-esx3")

    def reported() -> tuple[bool, str]:
        row = world.status_of("vm1")
        state, reason = (row.state, row.reason) if row else ("absent", "")
        return state == ERROR and "has no OVS VM" in reason, f"vm1: {state} ({reason})"

    operations.wait_for(reported, timeout=30)
    # The manager still serves esx1 and esx2: vm4 (esx1) attaches and reaches vm2.
    peer = next(
        r.ip for r in operations.status(world.vc, world.nb, world.settings) if r.vm == "vm2"
    )
    operations.attach(world.vc, world.nb, world.settings, "vm4", NET)

    world.wait_state(["vm4"], BOUND, timeout=30)
    world.lab.dhcp("vm4")
    assert peer is not None
    wait_for_ping(world.lab, "vm4", peer)
