"""The CLI end to end against the simulator: exit codes, JSON, no leaked secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ovsphere.lab.simulator import Simulator, SimulatorOptions
from ovsphere.testing.vsphere import url_for

pytestmark = pytest.mark.functional


@pytest.fixture
def secret_sim(vcsim_binary, tmp_path):
    """A simulator whose password is unmistakable in any output."""
    sim = Simulator.start(
        SimulatorOptions(password="Zq7-not-to-be-logged"),
        binary=vcsim_binary,
        log_path=tmp_path / "vcsim.log",
    )
    yield sim
    sim.stop()


def ovsphere(sim, *args, password=None, check=False):
    env = dict(os.environ)
    env.update(
        {
            "OVSPHERE_VCENTER": url_for(sim),
            "OVSPHERE_INSECURE": "1",
            "OVSPHERE_DVS": "DVS0",
            "COLUMNS": "200",
        }
    )
    if password is not None:
        env["OVSPHERE_VCENTER"] = f"https://{sim.options.user}:{password}@{sim.host}:{sim.port}/sdk"
    result = subprocess.run(
        [sys.executable, "-m", "ovsphere", "-vv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_prepare_seed_check_inventory(secret_sim):
    vcsim = secret_sim
    secret = vcsim.options.password
    out = [ovsphere(vcsim, "check")]
    assert out[0].returncode == 1 and "FAIL portgroup" in out[0].stdout
    out.append(ovsphere(vcsim, "prepare", check=True))
    out.append(ovsphere(vcsim, "lab", "seed", "--vms", "2", check=True))
    out.append(ovsphere(vcsim, "prepare", check=True))
    assert "3 ports changed" in out[-1].stdout
    out.append(ovsphere(vcsim, "check", "--json", check=True))
    report = json.loads(out[-1].stdout)
    assert report["ok"] is True and {c["status"] for c in report["checks"]} == {"PASS"}
    out.append(ovsphere(vcsim, "inventory", "--json", check=True))
    inv = json.loads(out[-1].stdout)
    assert inv["version"] == 1
    assert sorted(o["name"] for o in inv["ovs_vms"]) == [f"ovs-{h['name']}" for h in inv["hosts"]]
    assert all(len(o["trunk_nics"]) == 1 for o in inv["ovs_vms"])
    out.append(ovsphere(vcsim, "inventory", check=True))
    assert "OVS VMs (transport nodes)" in out[-1].stdout
    for r in out:
        assert secret not in r.stdout and secret not in r.stderr
    assert any("logged in to vCenter" in r.stderr for r in out)  # the logs were on


def test_bad_password_and_bad_setting_give_clear_errors(vcsim):
    r = ovsphere(vcsim, "inventory", password="wrong-pass-123")
    assert r.returncode == 1
    assert "rejected the user or password" in r.stderr and "wrong-pass-123" not in r.stderr
    r = ovsphere(vcsim, "prepare", "--trunk", "1-5000")
    assert r.returncode == 2 and "--trunk" in r.stderr and "0-4094" in r.stderr
    env = dict(os.environ, OVSPHERE_VCENTER="http://x")
    r = subprocess.run(
        [sys.executable, "-m", "ovsphere", "inventory"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "OVSPHERE_VCENTER" in r.stderr


def test_vcenter_sim_runs_in_the_foreground_until_sigterm(vcsim_binary):
    import signal
    import time

    env = dict(os.environ, OVSPHERE_SIM_PASSWORD="Zq7-sim-secret", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "ovsphere", "vcenter", "sim", "--port", "0",
                             "--hosts", "2", "--vms", "1", "--precopy", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while "vCenter simulator at" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("https://127.0.0.1:") and url.endswith("/sdk")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        from pyVim.connect import Disconnect, SmartConnect

        si = SmartConnect(host="127.0.0.1", port=port, user="ovsphere", pwd="Zq7-sim-secret",
                          disableSslCertValidation=True)
        Disconnect(si)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Zq7-sim-secret" not in line + out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
