"""Benchmark: pings lost through a vMotion, with and without VmMigratedEvent held back.

Run as root: ``.venv/bin/python bench/vmotion.py [--moves 6]``.

1. ``lab up`` of the default topology (its manager running), network ``bench``
   with DHCP, vm1 (esx1) and vm2 (esx2) attached.
2. vm1 moves between esx1 and esx3 ``--moves`` times while vm2 pings it every
   10 ms: pings lost per move, and the outage (last reply before, first reply
   after) against the lab's own switch-over (link cut -> RARP sent).
3. The same with a manager that sleeps 2 s before acting on a batch of vCenter
   changes holding a ``VmMigratedEvent`` (``OVSPHERE_DELAY``).

Prints the figures and writes them to ``bench/results/vmotion.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ovsphere.lab.daemons import stop
from ovsphere.lab.down import down
from ovsphere.lab.manual import LabControl
from ovsphere.lab.pings import ping_through
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import DEFAULT_TOPOLOGY, Topology
from ovsphere.lab.up import up
from ovsphere.lab.vmotion import migrate, wait_for_move
from ovsphere.manager import faults, operations
from ovsphere.manager.desired import BOUND
from ovsphere.testing.crash import ManagerProcess
from ovsphere.testing.lab import LabClients

RESULTS = Path(__file__).parent / "results"
NAME = "bvm"
DELAY = 2.0


def moves(c: LabClients, count: int, ip: str) -> list[dict[str, Any]]:
    lab = c.lab
    out = []
    for i in range(count):
        target = "esx3" if i % 2 == 0 else "esx1"

        def move(target: str = target) -> None:
            migrate(c.vc, "vm1", target)
            wait_for_move(lab.state.dir, "vm1", target)
            c.wait_state(["vm1"], BOUND, timeout=60)

        pings = ping_through(lab, "vm2", ip, move)
        switch = json.loads((lab.state.dir / "switchovers.json").read_text())[-1]
        outage = pings.outage()
        out.append(
            {
                "to": target,
                "sent": pings.sent,
                "lost": pings.lost,
                "outage_ms": round((outage[1] - outage[0]) * 1000) if outage else 0,
                # how long before the lab cut the VM's link the last reply came: up to a
                # probe interval (10 ms) when the outage is the cut's; more, someone cut early
                "last_reply_before_cut_ms": (
                    round((switch["cut"] - outage[0]) * 1000) if outage else 0
                ),
                "lab_switch_over_ms": round((switch["announced"] - switch["cut"]) * 1000, 1),
            }
        )
        print(f"  to {target}: {pings.lost} of {pings.sent} lost, outage {out[-1]['outage_ms']} ms")
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    lost = [r["lost"] for r in runs]
    return {
        "lost_per_move": lost,
        "lost_median": statistics.median(lost),
        "lost_max": max(lost),
        "outage_ms_median": statistics.median(r["outage_ms"] for r in runs),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=6)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (namespaces)")
    topology = Topology.model_validate({**DEFAULT_TOPOLOGY, "name": NAME})
    manager: ManagerProcess | None = None
    try:
        up(topology, log=lambda line: None)
        lab = LabControl(NAME)
        c = LabClients(lab)
        try:
            operations.create_network(c.nb, "bench", cidr="10.60.0.0/24")
            for vm in ("vm1", "vm2"):
                operations.attach(c.vc, c.nb, c.settings, vm, "bench")
            c.wait_state(["vm1", "vm2"], BOUND, timeout=60)
            ip = lab.dhcp("vm1")
            lab.dhcp("vm2")
            print(f"{args.moves} vMotions of vm1 under a 10 ms ping from vm2:")
            plain = moves(c, args.moves, ip)

            print(f"the same, VmMigratedEvent held back {DELAY:g} s from the manager:")
            first = next(p for p in LabState(NAME).record.processes if p.name == "lab/manager")
            stop(first)
            manager = ManagerProcess(
                lab, "manager-delayed", env={faults.DELAY_ENV: f"watch:before-migrated={DELAY}"}
            )
            time.sleep(3)  # its first pass
            delayed = moves(c, args.moves, ip)
        finally:
            c.close()
    finally:
        if manager is not None:
            manager.stop()
        down(LabState(NAME))
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "ping_interval_ms": 10,
        "precopy_s": topology.precopy,
        "no_delay": summary(plain),
        "vmmigratedevent_delayed_2s": summary(delayed),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vmotion.json").write_text(json.dumps(result, indent=2) + "\n")
    for label, key in (
        ("no delay", "no_delay"),
        ("VmMigratedEvent +2 s", "vmmigratedevent_delayed_2s"),
    ):
        s = result[key]
        print(
            f"{label:22s} lost per move {s['lost_per_move']} (median {s['lost_median']}, max "
            f"{s['lost_max']}; 10 ms each), outage median {s['outage_ms_median']} ms"
        )


if __name__ == "__main__":
    main()
