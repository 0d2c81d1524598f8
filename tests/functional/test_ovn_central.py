"""OVN central as the lab runs it: unix, tcp and TLS clients; standalone and Raft."""

from __future__ import annotations

import subprocess
import time

import pytest

from ovsphere.lab.daemons import stop
from ovsphere.lab.ovn_central import start_central
from ovsphere.testing.ovn import loopback_central, make_pki

pytestmark = pytest.mark.functional


def nbctl(db: str, *args: str, ssl=None) -> subprocess.CompletedProcess[str]:
    tls = ["-p", str(ssl.private_key), "-c", str(ssl.certificate), "-C", str(ssl.ca_cert)] \
        if ssl else []
    return subprocess.run(["ovn-nbctl", "--timeout=20", f"--db={db}", *tls, *args],
                          capture_output=True, text=True, timeout=30)


def sb_has_datapath(sb: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ovn-sbctl", "--timeout=5", f"--db={sb}", "--columns=external_ids",
                              "list", "datapath_binding"], capture_output=True, text=True)
        if "sw0" in out.stdout:
            return True
        time.sleep(0.1)
    return False


def test_standalone_over_unix_and_tcp_and_northd_translates(ovn_central):
    m = ovn_central.members[0]
    assert nbctl(ovn_central.nb_unix, "ls-add", "sw0").returncode == 0
    listed = nbctl(f"tcp:127.0.0.1:{m.nb_port}", "ls-list")
    assert listed.returncode == 0 and "sw0" in listed.stdout
    assert sb_has_datapath(ovn_central.sb_tcp)  # ovn-northd made the SB datapath


def test_tls_needs_a_certificate_signed_by_the_ca(tmp_path):
    server, client = make_pki(tmp_path / "pki")
    central = loopback_central(tmp_path / "ovn", ssl=server)
    procs = start_central(central)
    try:
        m = central.members[0]
        db = f"ssl:127.0.0.1:{m.nb_ssl_port}"
        assert nbctl(db, "ls-add", "sw0", ssl=client).returncode == 0
        assert "sw0" in nbctl(central.nb_unix, "ls-list").stdout
        _, stranger = make_pki(tmp_path / "other-pki")  # a client the server's CA never signed
        refused = nbctl(db, "--timeout=3", "ls-list", ssl=stranger)
        assert refused.returncode != 0
    finally:
        for p in reversed(procs):
            stop(p)


def test_a_three_member_cluster_keeps_serving_when_one_member_stops(tmp_path):
    central = loopback_central(tmp_path / "ovn", members=3)
    procs = start_central(central)
    try:
        assert nbctl(central.nb_tcp, "ls-add", "sw0").returncode == 0
        status = subprocess.run(
            ["ovn-appctl", "-t", str(central.members[0].dirs.run / "nb.ctl"),
             "cluster/status", "OVN_Northbound"], capture_output=True, text=True).stdout
        assert "Servers:" in status and status.count("tcp:127.0.0.1") >= 3
        first_nb = next(p for p in procs if p.name == "central0/ovsdb-nb")
        stop(first_nb)
        survivors = ",".join(f"tcp:127.0.0.1:{m.nb_port}" for m in central.members[1:])
        # The two left elect a new leader (election timer: 1 s) and go on.
        deadline = time.monotonic() + 20
        while (added := nbctl(survivors, "--may-exist", "ls-add", "sw1")).returncode != 0:
            assert time.monotonic() < deadline, added.stderr
            time.sleep(0.2)
        listed = nbctl(survivors, "ls-list").stdout
        assert "sw0" in listed and "sw1" in listed
    finally:
        for p in reversed(procs):
            stop(p)
