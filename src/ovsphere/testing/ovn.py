"""OVN central on loopback for functional tests: standalone, clustered, with TLS.

``ovn_central`` starts NB + SB ovsdb-servers and ovn-northd on free loopback
ports (and unix sockets), ``ovn_cluster`` the same as three Raft members per
database, each stopped by PID at teardown.  :func:`make_pki` writes a
throw-away CA and certificates with openssl for the TLS tests.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovsphere.lab.daemons import NodeDirs, stop
from ovsphere.lab.ovn_central import Central, Member, SslFiles, start_central


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_pki(d: Path) -> tuple[SslFiles, SslFiles]:
    """(server, client) key/certificate pairs signed by one fresh CA."""
    d.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=ovsphere test CA")
    files = []
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out",
                f"{who}.csr", "-subj", f"/CN=ovsphere test {who}")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{who}.pem", "-days", "1")
        files.append(SslFiles(d / f"{who}.key", d / f"{who}.pem", d / "ca.pem"))
    return files[0], files[1]


def loopback_central(root: Path, members: int = 1, ssl: SslFiles | None = None) -> Central:
    out = []
    for i in range(members):
        nb, sb, rnb, rsb, snb, ssb = free_ports(6)
        out.append(Member(dirs=NodeDirs(root / f"m{i}"), ip="127.0.0.1", nb_port=nb,
                          sb_port=sb, raft_nb_port=rnb, raft_sb_port=rsb, ssl=ssl,
                          nb_ssl_port=snb, sb_ssl_port=ssb))
    return Central(tuple(out))


@pytest.fixture
def ovn_central(tmp_path: Path) -> Iterator[Central]:
    central = loopback_central(tmp_path / "ovn")
    procs = start_central(central)
    try:
        yield central
    finally:
        for p in reversed(procs):
            stop(p)


@pytest.fixture
def ovn_cluster(tmp_path: Path) -> Iterator[Central]:
    central = loopback_central(tmp_path / "ovn", members=3)
    procs = start_central(central)
    try:
        yield central
    finally:
        for p in reversed(procs):
            stop(p)
