"""A real ovsdb-server + ovs-vswitchd (dummy datapath) for functional tests.

``proxy_bridge`` gives a bridge with dummy ports whose OpenFlow tables can be
loaded and probed with ``ofproto/trace``: what OVS would do with a frame,
without namespaces or packets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsphere.lab.daemons import NodeDirs, ofctl, run, start_ovs, stop, vsctl


@dataclass
class DummyBridge:
    dirs: NodeDirs
    name: str

    def add_port(self, name: str, ofport: int) -> None:
        vsctl(
            self.dirs,
            "add-port",
            self.name,
            name,
            "--",
            "set",
            "interface",
            name,
            "type=dummy",
            f"ofport_request={ofport}",
        )

    def load(self, flows: list[str]) -> None:
        ofctl(
            self.dirs,
            "-O",
            "OpenFlow13",
            "replace-flows",
            f"unix:{self.dirs.run / self.name}.mgmt",
            "-",
            input="\n".join(flows) + "\n",
        )

    def trace(self, flow: str) -> str:
        """The datapath actions OVS takes for ``flow`` ("drop" when none)."""
        out = run(
            [
                "ovs-appctl",
                f"--target={self.dirs.run / 'ovs-vswitchd.ctl'}",
                "ofproto/trace",
                self.name,
                flow,
            ],
            dirs=self.dirs,
        )
        line = next(x for x in out.splitlines() if x.startswith("Datapath actions:"))
        return line.split(":", 1)[1].strip()


@pytest.fixture
def proxy_bridge(tmp_path: Path) -> Iterator[DummyBridge]:
    dirs = NodeDirs(tmp_path / "ovs")
    procs = start_ovs("test", dirs, dummy=True)
    try:
        vsctl(
            dirs,
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=dummy",
            "fail-mode=secure",
            "protocols=OpenFlow13",
        )
        yield DummyBridge(dirs, "br0")
    finally:
        for p in reversed(procs):
            stop(p)
