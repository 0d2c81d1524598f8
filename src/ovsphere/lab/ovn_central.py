"""OVN central: the NB and SB databases and ovn-northd.

Standalone (one ovsdb-server per database) or clustered (three Raft members
per database, each in its own directory, namespace and address).  Clients on
this machine use the unix sockets; ovn-controller in the OVS VMs uses tcp on
the management network.  Functional tests start the same thing on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ovsphere.lab.daemons import NB_SCHEMA, SB_SCHEMA, NodeDirs, require, run, spawn
from ovsphere.lab.state import LabState, ProcessRecord


@dataclass(frozen=True)
class SslFiles:
    private_key: Path
    certificate: Path
    ca_cert: Path

    def options(self) -> list[str]:
        return [f"--private-key={self.private_key}", f"--certificate={self.certificate}",
                f"--ca-cert={self.ca_cert}"]


@dataclass(frozen=True)
class Member:
    """One OVN central member: where it runs and listens."""

    dirs: NodeDirs
    ip: str
    nb_port: int
    sb_port: int
    raft_nb_port: int
    raft_sb_port: int
    netns: str | None = None
    ssl: SslFiles | None = None  # when set, NB and SB also listen with TLS
    nb_ssl_port: int = 0
    sb_ssl_port: int = 0

    @property
    def nb_sock(self) -> Path:
        return self.dirs.run / "nb.sock"

    @property
    def sb_sock(self) -> Path:
        return self.dirs.run / "sb.sock"


@dataclass(frozen=True)
class Central:
    members: tuple[Member, ...]

    @property
    def nb_unix(self) -> str:
        return ",".join(f"unix:{m.nb_sock}" for m in self.members)

    @property
    def sb_unix(self) -> str:
        return ",".join(f"unix:{m.sb_sock}" for m in self.members)

    @property
    def nb_tcp(self) -> str:
        return ",".join(f"tcp:{m.ip}:{m.nb_port}" for m in self.members)

    @property
    def sb_tcp(self) -> str:
        return ",".join(f"tcp:{m.ip}:{m.sb_port}" for m in self.members)


def _create_db(m: Member, first: Member, clustered: bool, kind: str) -> Path:
    db = m.dirs.root / f"{kind}.db"
    if db.exists():
        return db
    schema = NB_SCHEMA if kind == "nb" else SB_SCHEMA
    name = "OVN_Northbound" if kind == "nb" else "OVN_Southbound"
    port = m.raft_nb_port if kind == "nb" else m.raft_sb_port
    first_port = first.raft_nb_port if kind == "nb" else first.raft_sb_port
    tool = require("ovsdb-tool")
    if not clustered:
        run([tool, "create", str(db), str(schema)])
    elif m is first:
        run([tool, "create-cluster", str(db), str(schema), f"tcp:{m.ip}:{port}"])
    else:
        run(
            [
                tool,
                "join-cluster",
                str(db),
                name,
                f"tcp:{m.ip}:{port}",
                f"tcp:{first.ip}:{first_port}",
            ]
        )
    return db


def start_central(central: Central, *, state: LabState | None = None) -> list[ProcessRecord]:
    clustered = len(central.members) > 1
    first = central.members[0]
    procs = []
    for m in central.members:
        m.dirs.make()
        listeners = (("nb", m.nb_sock, m.nb_port, m.nb_ssl_port),
                     ("sb", m.sb_sock, m.sb_port, m.sb_ssl_port))
        for kind, sock, port, ssl_port in listeners:
            db = _create_db(m, first, clustered, kind)
            tls = [*m.ssl.options(), f"--remote=pssl:{ssl_port}:{m.ip}"] if m.ssl else []
            procs.append(
                spawn(
                    f"central{central.members.index(m)}",
                    "ovsdb-server",
                    [
                        str(db),
                        f"--remote=punix:{sock}",
                        f"--remote=ptcp:{port}:{m.ip}",
                        *tls,
                        f"--unixctl={m.dirs.run / (kind + '.ctl')}",
                    ],
                    dirs=m.dirs,
                    state=state,
                    netns=m.netns,
                    ready=sock,
                    label=f"ovsdb-{kind}",
                )
            )
    procs.append(
        spawn(
            "central0",
            "ovn-northd",
            [
                f"--ovnnb-db={central.nb_unix}",
                f"--ovnsb-db={central.sb_unix}",
                f"--unixctl={first.dirs.run / 'ovn-northd.ctl'}",
            ],
            dirs=first.dirs,
            state=state,
            netns=first.netns,
        )
    )
    return procs
