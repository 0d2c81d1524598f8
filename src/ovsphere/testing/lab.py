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
from ovsphere.lab.manual import LabControl
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import DEFAULT_TOPOLOGY, Topology
from ovsphere.lab.up import up


def unique_name(prefix: str) -> str:
    """A lab name of this test process (two test runs on one machine never share a lab)."""
    return f"{prefix}{os.getpid() % 100000:05d}"


TEST_LAB = unique_name("t")


def lab_topology() -> Topology:
    return Topology.model_validate({**DEFAULT_TOPOLOGY, "name": TEST_LAB, "precopy": 0.5})


@pytest.fixture(scope="session")
def lab() -> Iterator[LabControl]:
    if os.geteuid() != 0:
        pytest.fail("lab tests need root: run them with scripts/test.sh as root")
    topology = lab_topology()
    try:
        up(topology, log=lambda line: None)
        yield LabControl(TEST_LAB)
    finally:
        down(LabState(TEST_LAB))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "lab" in getattr(item, "fixturenames", ()):
        keep_logs(item.name)


def keep_logs(test_name: str) -> Path | None:
    state = LabState(TEST_LAB)
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
