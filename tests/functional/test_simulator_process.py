"""The simulator as a process: build errors, start, stop by PID, secrets kept out of sight."""

import dataclasses
import os
from pathlib import Path

import pytest

from ovsphere.errors import SetupError
from ovsphere.lab.simulator import Simulator, build_simulator
from ovsphere.testing.vcsim import TEST_OPTIONS, connect

pytestmark = pytest.mark.functional


def test_missing_go_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError) as raised:
        build_simulator(tmp_path / "cache")
    assert "golang-go" in str(raised.value) and "apt-get install" in str(raised.value)


def test_build_is_cached(vcsim_binary):
    assert build_simulator() == vcsim_binary
    assert os.access(vcsim_binary, os.X_OK)


def test_stop_ends_the_process_by_pid_and_keeps_the_password_out_of_sight(vcsim_binary, tmp_path):
    secret = "s3cret-Pw-4711"
    options = dataclasses.replace(TEST_OPTIONS, password=secret)
    log = tmp_path / "sim.log"
    sim = Simulator.start(options, binary=vcsim_binary, log_path=log)
    cmdline = Path(f"/proc/{sim.pid}/cmdline").read_bytes()
    connect(sim)  # the password works

    sim.stop()
    sim.stop()

    assert not sim.running
    with pytest.raises(ProcessLookupError):
        os.kill(sim.pid, 0)
    assert secret.encode() not in cmdline
    assert secret not in log.read_text()
    assert secret not in repr(options) and secret not in repr(sim)
    assert sim.url.startswith("https://127.0.0.1:") and sim.url.endswith("/sdk")
    assert "@" not in sim.url


def test_a_simulator_that_cannot_listen_raises_with_its_log(vcsim, vcsim_binary, tmp_path):
    taken = dataclasses.replace(TEST_OPTIONS, port=vcsim.port)
    with pytest.raises(SetupError) as raised:
        Simulator.start(taken, binary=vcsim_binary, log_path=tmp_path / "second.log", timeout=30)
    assert "exited with code" in str(raised.value)
    assert "address already in use" in str(raised.value)
