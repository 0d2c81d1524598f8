"""pytest fixtures that run the lab's vCenter simulator (see ovsphere.lab.simulator).

Load them with ``pytest_plugins = ["ovsphere.testing.vcsim"]``. The binary is
built once per test session; every test that asks for ``vcsim`` gets its own
simulator process (3 hosts in one cluster, 2 VMs, vMotion pre-copy 0.5 s) on a
free loopback port, stopped by its PID when the test ends, its log kept in the
test's tmp_path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from ovsphere.lab.simulator import Simulator, SimulatorOptions, build_simulator

__all__ = [
    "TEST_OPTIONS",
    "connect",
    "events",
    "failure",
    "inventory",
    "vcsim",
    "vcsim_binary",
    "wait",
]

TEST_OPTIONS = SimulatorOptions(clusters=1, hosts=3, vms=2, precopy=0.5)


@pytest.fixture(scope="session")
def vcsim_binary() -> Path:
    """The simulator binary, built (or found in the cache) once per session."""
    return build_simulator()


@pytest.fixture
def vcsim(vcsim_binary: Path, tmp_path: Path) -> Iterator[Simulator]:
    """A fresh simulator for one test."""
    sim = Simulator.start(TEST_OPTIONS, binary=vcsim_binary, log_path=tmp_path / "vcsim.log")
    try:
        yield sim
    finally:
        sim.stop()


def connect(sim: Simulator) -> vim.ServiceInstance:
    """Log in to the simulator as its user, as ovsphere logs in to vCenter."""
    si: vim.ServiceInstance = SmartConnect(
        host=sim.host,
        port=sim.port,
        user=sim.options.user,
        pwd=sim.options.password,
        disableSslCertValidation=True,
    )
    return si


def inventory(si: vim.ServiceInstance, kind: type[Any]) -> list[Any]:
    """Every managed object of one type, via a container view as ovsphere finds them."""
    content = si.RetrieveContent()
    assert content.viewManager is not None
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def wait(task: vim.Task) -> Any:
    """Wait for a task to succeed and return its result; its fault is raised."""
    WaitForTask(task)
    return task.info.result


def failure(task: vim.Task) -> Exception:
    """Wait for a task that must fail and return its fault (``msg`` is the sentence)."""
    try:
        WaitForTask(task)
    except Exception as fault:  # pyVmomi raises the task's fault as is
        return fault
    raise AssertionError(f"task {task} succeeded, a failure was expected")


def events(si: vim.ServiceInstance, entity: Any, *kinds: str) -> list[Any]:
    """The latest events of the given types about one entity, oldest first."""
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=entity, recursion="self"),
        eventTypeId=list(kinds),
    )
    manager = si.RetrieveContent().eventManager
    assert manager is not None
    found = manager.QueryEvents(spec)
    return sorted(found, key=lambda e: e.key)
