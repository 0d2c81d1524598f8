"""Benchmark: ``attach`` -> first successful ping, p50 and p99 over 50 attaches.

Run as root: ``.venv/bin/python bench/attach_latency.py [--attaches 50]``.

``lab up`` of the default topology (its manager running); network ``bench``;
vm2 (esx2) attached once, the peer.  Then, for each of vm1 (esx1), vm3 (esx3)
and vm4 (esx1) in turn: the VM's address is set in its namespace and static
neighbour entries on both ends (so ARP's retry timer does not count), a ping
every 10 ms from vm2 starts, ``attach VM bench --ip ...`` runs (the operation
the CLI runs: logical port written, VLAN held), and the time from the start
of the attach to the first echo reply is the latency.  The manager then does
the rest: the dvPort's VLAN, the patch pair on the host's OVS VM, and OVN
binding the port.  Each VM is detached again (and the test waits for its VLAN
to be released) before its next attach.

Prints the figures and writes them to ``bench/results/attach_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ovsphere.lab.down import down
from ovsphere.lab.manual import LabControl
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import DEFAULT_TOPOLOGY, Topology
from ovsphere.lab.up import up
from ovsphere.manager import operations
from ovsphere.manager.desired import BOUND, UNATTACHED
from ovsphere.testing.lab import LabClients

RESULTS = Path(__file__).parent / "results"
NAME = "blat"
PEER, PEER_IP = "vm2", "10.70.0.2"
VMS = {"vm1": "10.70.0.11", "vm3": "10.70.0.13", "vm4": "10.70.0.14"}


def mac(lab: LabControl, vm: str) -> str:
    return lab.run(vm, "cat", "/sys/class/net/eth0/address").stdout.strip()


def start_ping(lab: LabControl, ip: str, timeout: float = 30) -> subprocess.Popen[str]:
    """vm2 pings ``ip`` every 10 ms until the first reply (or ``timeout``)."""
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.ns(PEER),
            "ping",
            "-n",
            "-D",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            "1",
            "-w",
            str(timeout),
            ip,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def first_reply(proc: subprocess.Popen[str], start: float) -> float:
    """Seconds from ``start`` (wall clock) to the ping's first echo reply."""
    out, _ = proc.communicate(timeout=60)
    for line in out.splitlines():
        if "bytes from" in line:
            return float(line.split("]")[0].lstrip("[")) - start
    raise RuntimeError(f"no echo reply: {out[-300:]}")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attaches", type=int, default=50)
    parser.add_argument("--keep-logs", type=Path, help="copy the lab's logs here before down")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (namespaces)")
    topology = Topology.model_validate({**DEFAULT_TOPOLOGY, "name": NAME})
    latencies: list[float] = []
    try:
        up(topology, log=lambda line: None)
        lab = LabControl(NAME)
        c = LabClients(lab)
        vc, nb, settings = c.vc, c.nb, c.settings
        try:
            operations.create_network(nb, "bench", cidr="10.70.0.0/24")
            operations.attach(vc, nb, settings, PEER, "bench", ip=PEER_IP)
            c.wait_state([PEER], BOUND, timeout=60)
            lab.run(PEER, "ip", "addr", "replace", f"{PEER_IP}/24", "dev", "eth0")
            peer_mac = mac(lab, PEER)
            for vm, ip in VMS.items():
                lab.run(vm, "ip", "addr", "replace", f"{ip}/24", "dev", "eth0")
                lab.run(vm, "ip", "neigh", "replace", PEER_IP, "lladdr", peer_mac, "dev", "eth0")
                lab.run(PEER, "ip", "neigh", "replace", ip, "lladdr", mac(lab, vm), "dev", "eth0")
            names = list(VMS)
            for i in range(args.attaches):
                vm = names[i % len(names)]
                ping = start_ping(lab, VMS[vm])
                time.sleep(0.1)  # pinging (unanswered) before the attach starts
                start = time.time()
                operations.attach(vc, nb, settings, vm, "bench", ip=VMS[vm])
                latencies.append(first_reply(ping, start))
                print(f"  {i + 1:3d} {vm}: {latencies[-1] * 1000:.0f} ms")
                operations.detach(vc, nb, vm)
                c.wait_state([vm], UNATTACHED, timeout=60)
        finally:
            c.close()
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in LabState(NAME).dir.rglob("*.log"):
                shutil.copy(log, args.keep_logs / f"{log.parent.name}-{log.name}")
        down(LabState(NAME))
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "attaches": len(latencies),
        "p50_ms": round(pct(latencies, 50) * 1000),
        "p99_ms": round(pct(latencies, 99) * 1000),
        "mean_ms": round(statistics.mean(latencies) * 1000),
        "max_ms": round(max(latencies) * 1000),
        "latencies_ms": [round(x * 1000) for x in latencies],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attach_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"attach -> first ping over {result['attaches']} attaches: p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms (mean {result['mean_ms']}, max {result['max_ms']})"
    )


if __name__ == "__main__":
    main()
