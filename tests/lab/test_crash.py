"""Crash consistency: the manager (or ``attach``) dies at each step of attach, detach and
vMotion, a fresh manager starts, and the state converges: every NIC that should be bound
is, with a VLAN of its own, its dvPort passing exactly that VLAN, its patch only on the
OVS VM of its host, pinned there; nothing detached keeps a VLAN, a port or a patch.

The lab runs no manager of its own: each test starts them (``ManagerProcess``), one at a
time (they share the NB lock).  vm2 on ``crash`` is the peer every test pings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ovsphere.lab.demo import set_attribute
from ovsphere.lab.vmotion import wait_for_move
from ovsphere.manager import faults, operations
from ovsphere.manager.desired import INTENT_ATTRIBUTE
from ovsphere.ovn.ports import read_ports
from ovsphere.testing.crash import ManagerProcess, wait_converged
from ovsphere.testing.lab import CRASH_LAB, LabClients, wait_for_no_ping, wait_for_ping
from ovsphere.vsphere.nics import migrations_in_progress, move_nic

pytestmark = pytest.mark.lab

NET = "crash"
PEER_IP = "10.50.0.2"
IPS = {"vm1": "10.50.0.11", "vm3": "10.50.0.13", "vm5": "10.50.0.15"}


class World(LabClients):
    """The crash lab, what should be attached in it, and the manager running (if any)."""

    def __init__(self, lab) -> None:
        super().__init__(lab)
        self.attached: dict[str, str] = {}
        self.manager: ManagerProcess | None = None
        self.runs = 0

    def start(self, crash_at: str | None = None) -> ManagerProcess:
        assert self.manager is None or self.manager.proc.poll() is not None
        self.runs += 1
        self.manager = ManagerProcess(self.lab, f"manager{self.runs}", crash_at)
        return self.manager

    def stop(self) -> None:
        if self.manager is not None:
            self.manager.stop()
            self.manager = None

    def converge(self) -> dict[str, int]:
        got = wait_converged(self.lab, self.attached)
        assert not got.problems, got.problems
        return got.bound

    def attach(self, vm: str, *, crash_at: str | None = None) -> None:
        env = {faults.ENV: crash_at} if crash_at else {}
        r = subprocess.run(
            [sys.executable, "-m", "ovsphere", "--lab", CRASH_LAB, "attach", vm, NET,
             "--ip", IPS.get(vm, PEER_IP)],
            capture_output=True, text=True, timeout=60, env={**_environ(), **env},
        )
        want = faults.CRASH_EXIT if crash_at else 0
        assert r.returncode == want, r.stdout + r.stderr

    def close(self) -> None:
        self.stop()
        super().close()


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != faults.ENV}


@pytest.fixture(scope="module")
def world(crash_lab):
    w = World(crash_lab)
    operations.create_network(w.nb, NET, cidr="10.50.0.0/24")
    w.start()
    w.attach("vm2")
    w.attached["vm2"] = NET
    w.converge()
    crash_lab.dhcp("vm2")
    yield w
    w.close()


def _reachable(w: World, vm: str) -> None:
    w.lab.dhcp(vm)
    wait_for_ping(w.lab, vm, PEER_IP)


def _detach(w: World, vm: str) -> None:
    operations.detach(w.vc, w.nb, vm)
    del w.attached[vm]
    w.converge()


# --- attach ---------------------------------------------------------------------------------


def test_attach_killed_after_moving_the_nic(world):
    """``attach`` dies once the NIC is on the isolated port group, before any port: the
    NIC stays blocked, and attaching again binds it."""
    inv = world.lab.inventory()
    vm = next(v for v in inv.vms if v.name == "vm5")
    nic = vm.nics[0]
    other = next(
        p for p in inv.portgroups
        if p.switch_uuid == nic.backing.switch_uuid and p.key != nic.backing.portgroup_key
        and not p.uplink
    )
    move_nic(world.vc, vm.moref, nic.key, other.switch_uuid, other.key)
    world.attach("vm5", crash_at="attach:after-nic-move")
    world.converge()  # on the isolated port group, no port: blocked
    world.attach("vm5")
    world.attached["vm5"] = NET
    world.converge()
    _reachable(world, "vm5")
    _detach(world, "vm5")


def test_attach_killed_after_writing_the_port(world):
    world.attach("vm1", crash_at="allocate:after-write")
    world.attached["vm1"] = NET  # the VLAN is held: the manager binds it
    world.converge()
    world.attach("vm1")  # the operator retries: a no-op
    assert world.converge()["vm1"] == next(
        p.vlan for p in read_ports(world.nb) if p.vm_name == "vm1"
    )
    _reachable(world, "vm1")
    _detach(world, "vm1")


@pytest.mark.parametrize(
    "point", ["allocate:after-write", "pass:after-dvports", "pass:after-nodes"]
)
def test_manager_killed_while_binding(world, point):
    """Declarative attach: the manager writes the port (pinned from its first write, so
    there is no separate pin step), configures the dvPort, patches the OVS VM."""
    world.stop()
    vm3 = next(v.moref for v in world.lab.inventory().vms if v.name == "vm3")
    set_attribute(world.vc, vm3, INTENT_ATTRIBUTE, NET)
    world.attached["vm3"] = NET
    world.start(point).wait_for_crash()
    world.start()
    world.converge()
    _reachable(world, "vm3")
    set_attribute(world.vc, vm3, INTENT_ATTRIBUTE, "")
    del world.attached["vm3"]
    world.converge()


# --- detach ---------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["pass:after-dvports", "pass:after-nodes", "pass:after-releases"])
def test_manager_killed_while_detaching(world, point):
    world.attach("vm1")
    world.attached["vm1"] = NET
    world.converge()
    _reachable(world, "vm1")
    world.stop()
    operations.detach(world.vc, world.nb, "vm1")
    del world.attached["vm1"]
    world.start(point).wait_for_crash()
    world.start()
    world.converge()
    wait_for_no_ping(world.lab, "vm2", IPS["vm1"])


# --- vMotion --------------------------------------------------------------------------------


def _host_of(w: World, vm: str) -> str:
    inv = w.lab.inventory()
    moref = next(v.host for v in inv.vms if v.name == vm)
    return next(h.name for h in inv.hosts if h.moref == moref)


def _next_host(w: World, vm: str) -> str:
    hosts = w.lab.layout.topology.hosts
    return hosts[(hosts.index(_host_of(w, vm)) + 1) % len(hosts)]


def _bound_vm1(w: World) -> str:
    """vm1 bound, with its address; returns the host to move it to."""
    if "vm1" not in w.attached:
        w.attach("vm1")
        w.attached["vm1"] = NET
    w.converge()
    _reachable(w, "vm1")
    return _next_host(w, "vm1")


@pytest.mark.parametrize("point", ["vmotion:after-prearm-nodes", "vmotion:after-prearm-pins"])
def test_manager_killed_while_prearming(world, point):
    dest = _bound_vm1(world)
    world.stop()
    task = migrate_async(world, "vm1", dest)
    deadline = time.monotonic() + 10
    while "vm1" not in _announced(world):
        assert time.monotonic() < deadline, "vCenter never announced the vMotion"
        time.sleep(0.1)
    # Started during the 8 s pre-copy: it finds the vMotion under way and pre-arms it.
    world.start(point).wait_for_crash()
    world.start()
    task.wait(timeout=60)
    wait_for_move(world.lab.state.dir, "vm1", dest)
    world.converge()
    assert _host_of(world, "vm1") == dest
    wait_for_ping(world.lab, "vm1", PEER_IP)


@pytest.mark.parametrize("point", ["vmotion:after-finalize-nodes", "vmotion:after-finalize-pins"])
def test_manager_killed_while_finalizing(world, point):
    dest = _bound_vm1(world)
    task = migrate_async(world, "vm1", dest)
    deadline = time.monotonic() + 10
    while len(next(p for p in read_ports(world.nb) if p.vm_name == "vm1").requested_chassis) < 2:
        assert time.monotonic() < deadline, "the vMotion was never pre-armed"
        time.sleep(0.1)
    # A fresh manager takes the armed vMotion over and dies finalizing it.
    world.stop()
    world.start(point).wait_for_crash()
    world.start()
    task.wait(timeout=60)
    world.converge()
    assert _host_of(world, "vm1") == dest
    wait_for_ping(world.lab, "vm1", PEER_IP)


def _announced(w: World) -> set[str]:
    """Names of the VMs whose vMotion vCenter has announced (destination known)."""
    names = {v.moref: v.name for v in w.lab.inventory().vms}
    return {names[vm] for vm, (_, dst) in migrations_in_progress(w.vc).items() if dst}


def migrate_async(w: World, vm: str, host: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ovsphere", "lab", "vmotion", vm, host, "--name", CRASH_LAB],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
