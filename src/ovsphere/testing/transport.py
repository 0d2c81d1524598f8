"""A real OVS VM for the transport layer's functional tests.

``ovs_vm`` is a network namespace ``tt-<pid>`` with ovsdb-server and
ovs-vswitchd (userspace, netdev) running inside it, and veth NICs ``eth1`` and
``eth2`` with known MACs (their peers stay in the namespace, unplugged): what
an OVS VM looks like from OVSDB, its trunk vNICs included.  Its OVSDB unix
socket is reachable from the test's own namespace.  ``loopback_ovs`` is an
ovsdb-server + dummy ovs-vswitchd in the test's namespace listening on a free
loopback TCP port, for remotes other than unix.  Every process is stopped by
PID and the namespace removed at teardown, on failure too.

``ssl_ovsdb`` is an ovsdb-server that speaks TLS only (certificates from
:func:`ovsphere.testing.ovn.make_pki`).  ``clean_tls`` clears the ``ovs``
library's process-wide TLS settings for one test and restores them after:
tests of other layers may have set theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ovs import stream

from ovsphere.lab import netlink
from ovsphere.lab.daemons import (
    OVS_SCHEMA,
    NodeDirs,
    require,
    run,
    spawn,
    start_ovs,
    stop,
    vsctl,
)
from ovsphere.lab.ovn_central import SslFiles
from ovsphere.lab.state import LabState, ProcessRecord
from ovsphere.testing.ovn import free_ports, make_pki

VM_NICS = {"eth1": "02:00:5e:10:00:01", "eth2": "02:00:5e:10:00:02"}


@dataclass
class OvsVm:
    dirs: NodeDirs
    netns: str | None
    nics: dict[str, str]  # name -> MAC
    records: list[ProcessRecord]
    tcp_port: int | None = None

    @property
    def remote(self) -> str:
        return f"unix:{self.dirs.run / 'db.sock'}"

    def vsctl(self, *args: str) -> str:
        return vsctl(self.dirs, *args).strip()

    def next_cfg(self) -> int:
        return int(self.vsctl("get", "open_vswitch", ".", "next_cfg"))


def netns_name() -> str:
    return f"tt-{os.getpid()}"


@pytest.fixture
def ovs_vm(tmp_path: Path) -> Iterator[OvsVm]:
    ns = netns_name()
    netlink.remove_netns(ns)  # a namespace left by a killed run with this PID
    netlink.create_netns(ns)
    # Each daemon is recorded as it starts, so a failure half-way leaks nothing.
    state = LabState("ovs-vm", root=tmp_path / "state")
    try:
        for i, (name, mac) in enumerate(VM_NICS.items(), start=1):
            netlink.veth(ns, name, ns, f"peer{i}", mac_a=mac)
        dirs = NodeDirs(tmp_path / "ovs-vm")
        records = start_ovs("ovs-vm", dirs, state=state, netns=ns)
        yield OvsVm(dirs, ns, dict(VM_NICS), records)
    finally:
        for r in reversed(state.record.processes):
            stop(r)
        netlink.remove_netns(ns)


@pytest.fixture
def loopback_ovs(tmp_path: Path) -> Iterator[OvsVm]:
    (port,) = free_ports(1)
    dirs = NodeDirs(tmp_path / "ovs-tcp")
    state = LabState("ovs-tcp", root=tmp_path / "state")
    try:
        records = start_ovs(
            "ovs-tcp", dirs, state=state, remotes=[f"ptcp:{port}:127.0.0.1"], dummy=True
        )
        yield OvsVm(dirs, None, {}, records, tcp_port=port)
    finally:
        for r in reversed(state.record.processes):
            stop(r)


@dataclass
class TlsOvsdb:
    remote: str  # ssl:127.0.0.1:PORT
    server: SslFiles
    client: SslFiles
    tmp: Path


@pytest.fixture
def ssl_ovsdb(tmp_path: Path) -> Iterator[TlsOvsdb]:
    """An ovsdb-server (Open_vSwitch schema, no vswitchd) that only speaks TLS on loopback.

    ``start_ovs`` has no TLS options, so this one is started here.
    """
    server, client = make_pki(tmp_path / "pki")
    (port,) = free_ports(1)
    dirs = NodeDirs(tmp_path / "ovs-ssl")
    dirs.make()
    db = dirs.root / "conf.db"
    run([require("ovsdb-tool"), "create", str(db), str(OVS_SCHEMA)])
    sock = dirs.run / "db.sock"
    state = LabState("ovs-ssl", root=tmp_path / "state")
    try:
        spawn(
            "ovs-ssl",
            "ovsdb-server",
            [
                str(db),
                f"--remote=punix:{sock}",
                f"--remote=pssl:{port}:127.0.0.1",
                *server.options(),
                f"--unixctl={dirs.run / 'ovsdb-server.ctl'}",
            ],
            dirs=dirs,
            state=state,
            ready=sock,
        )
        run(["ovs-vsctl", f"--db=unix:{sock}", "--no-wait", "init"], dirs=dirs)
        yield TlsOvsdb(f"ssl:127.0.0.1:{port}", server, client, tmp_path)
    finally:
        for r in reversed(state.record.processes):
            stop(r)


@pytest.fixture
def clean_tls() -> Iterator[None]:
    saved = (
        stream.Stream._SSL_private_key_file,
        stream.Stream._SSL_certificate_file,
        stream.Stream._SSL_ca_cert_file,
    )
    stream.Stream._SSL_private_key_file = None
    stream.Stream._SSL_certificate_file = None
    stream.Stream._SSL_ca_cert_file = None
    try:
        yield
    finally:
        (
            stream.Stream._SSL_private_key_file,
            stream.Stream._SSL_certificate_file,
            stream.Stream._SSL_ca_cert_file,
        ) = saved
