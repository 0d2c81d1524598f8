"""The ``lab`` fixture: one emulated datacenter for a test session.

Built once (``ovsphere lab up`` with a test topology named ``t<pid>``), torn
down at the end whatever happened.  When a lab test fails, the logs of every
node (vswitchd, ovn-controller, the simulator, the agent) are copied to
``$OVSPHERE_TEST_LOGS`` (default ``./test-logs``) under the test's name.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ovsphere.lab.down import down
from ovsphere.lab.manager import lab_settings
from ovsphere.lab.manual import LabControl
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import DEFAULT_TOPOLOGY, Topology, load_topology
from ovsphere.lab.up import up
from ovsphere.manager import operations
from ovsphere.manager.desired import NicStatus
from ovsphere.ovn.connection import NbClient
from ovsphere.vsphere.connection import Connection


class LabClients:
    """A vCenter session and an NB client on a lab, with its manager's settings: what tests
    and benchmarks drive the lab's manager through, and how they wait for its work."""

    def __init__(self, lab: LabControl) -> None:
        self.lab = lab
        self.settings = lab_settings(lab.state)
        self.vc = Connection(lab.connection().endpoint, verify_tls=False)
        self.nb = NbClient(self.settings.require_nb())

    def status_of(self, vm: str) -> NicStatus | None:
        """The status of the VM's first NIC (None: no NIC of it is on an isolated port group)."""
        rows = [r for r in operations.status(self.vc, self.nb, self.settings) if r.vm == vm]
        return rows[0] if rows else None

    def state(self, vm: str) -> str:
        row = self.status_of(vm)
        return row.state if row else "absent"

    def wait_state(self, vms: list[str], want: str, timeout: float = 45) -> None:
        def check() -> tuple[bool, str]:
            states = {vm: self.state(vm) for vm in vms}
            return all(s == want for s in states.values()), str(states)

        operations.wait_for(check, timeout=timeout)

    def close(self) -> None:
        self.nb.close()
        self.vc.close()


def unique_name(prefix: str) -> str:
    """A lab name of this test process (two test runs on one machine never share a lab)."""
    return f"{prefix}{os.getpid() % 100000:05d}"


TEST_LAB = unique_name("t")


MANAGED_LAB = unique_name("m")


CRASH_LAB = unique_name("c")


def lab_topology(
    name: str = TEST_LAB, *, manager: bool = False, precopy: float = 0.5
) -> Topology:
    return Topology.model_validate(
        {**DEFAULT_TOPOLOGY, "name": name, "precopy": precopy, "manager": manager}
    )


def _lab(topology: Topology) -> Iterator[LabControl]:
    if os.geteuid() != 0:
        pytest.fail("lab tests need root: run them with scripts/test.sh as root")
    try:
        up(topology, log=lambda line: None)
        yield LabControl(topology.name)
    finally:
        down(LabState(topology.name))


@pytest.fixture(scope="session")
def lab() -> Iterator[LabControl]:
    """A lab whose VMs the tests bind by hand (no manager runs in it)."""
    yield from _lab(lab_topology())


@pytest.fixture(scope="session")
def managed_lab() -> Iterator[LabControl]:
    """A lab whose manager (``ovsphere manager run``) binds the VMs."""
    yield from _lab(lab_topology(MANAGED_LAB, manager=True))


def lab_from(path: Path, name: str, *, manager: bool = False) -> Iterator[LabControl]:
    """A lab of the topology file ``path`` under ``name`` (for a module's own fixture)."""
    topology = load_topology(path)
    yield from _lab(topology.model_copy(update={"name": name, "manager": manager}))


@pytest.fixture(scope="module")
def crash_lab() -> Iterator[LabControl]:
    """A lab whose managers the tests start and kill; vMotions pre-copy for 8 s, so a
    manager started after the vMotion began still pre-arms it."""
    yield from _lab(lab_topology(CRASH_LAB, precopy=8.0))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        labs = (("lab", TEST_LAB), ("managed_lab", MANAGED_LAB), ("crash_lab", CRASH_LAB))
        for fixture, name in labs:
            if fixture in getattr(item, "fixturenames", ()):
                keep_logs(item.name, name)


def keep_logs(test_name: str, lab_name: str = TEST_LAB) -> Path | None:
    state = LabState(lab_name)
    if not state.dir.exists():
        return None
    target = Path(os.environ.get("OVSPHERE_TEST_LOGS", "test-logs")) / test_name
    target.mkdir(parents=True, exist_ok=True)
    for log in state.dir.rglob("*.log"):
        dest = target / log.relative_to(state.dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, dest)
    # Not state.json: it holds the simulator's password.
    for name in ("wiring.json", "agent.json"):
        if (state.dir / name).exists():
            shutil.copy(state.dir / name, target / name)
    return target


def wait_for_ping(lab: LabControl, node: str, address: str, timeout: float = 30) -> float:
    """Seconds until ``node`` gets an answer from ``address``; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if lab.ping(node, address, count=1, wait=0.3) == 1:
            return time.monotonic() - start
    pytest.fail(f"{node} got no answer from {address} within {timeout} s")


def wait_for_no_ping(lab: LabControl, node: str, address: str, timeout: float = 15) -> None:
    """Until three pings in a row go unanswered (a change has taken effect)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if lab.ping(node, address, count=3, interval=0.2, wait=0.3) == 0:
            return
    pytest.fail(f"{node} still reaches {address} after {timeout} s")
