"""Benchmark: TCP through the lab's full path vs through one userspace OVS bridge.

Run as root: ``.venv/bin/python bench/dataplane.py [--seconds 10] [--runs 3]``.

1. ``lab up`` of the default topology, timed.
2. vm1 (esx1) and vm2 (esx2) on one OVN network; iperf3 between them: VM ->
   proxy switch (OVS) -> OVS VM -> Geneve -> OVS VM -> proxy switch -> VM.
   Meanwhile, the CPU time each OVS daemon on the path uses (where the time goes).
3. The same iperf3 between two namespaces joined by one netdev OVS bridge.

Prints the figures and writes them to ``bench/results/dataplane.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ovsphere.lab import netlink
from ovsphere.lab.daemons import NodeDirs, start_ovs, stop, vsctl
from ovsphere.lab.down import down
from ovsphere.lab.manual import LabControl
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import DEFAULT_TOPOLOGY, Topology
from ovsphere.lab.up import up
from ovsphere.testing.lab import wait_for_ping

RESULTS = Path(__file__).parent / "results"
NAME = "bench"


def iperf(client_ns: str, server_ns: str, address: str, seconds: int) -> float:
    """Gbit/s received, one TCP stream."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            r = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", address, "-t",
                                str(seconds), "-J"], capture_output=True, text=True)
            if r.returncode == 0:
                bits = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
                return float(bits) / 1e9
            time.sleep(0.1)
        raise RuntimeError(f"iperf3 to {address} failed: {r.stderr}")
    finally:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lab_path(seconds: int, runs: int) -> tuple[float, list[float], dict[str, float]]:
    topology = Topology.model_validate({**DEFAULT_TOPOLOGY, "name": NAME})
    start = time.monotonic()
    up(topology, log=lambda line: None)
    up_seconds = time.monotonic() - start
    lab = LabControl(NAME)
    lab.bind("vm1", "bench", 101, "10.50.0.1/24")
    lab.bind("vm2", "bench", 102, "10.50.0.2/24")
    wait_for_ping(lab, "vm1", "10.50.0.2")
    on_path = {p.name: p.pid for p in lab.state.record.processes
               if p.program in ("ovs-vswitchd", "ovn-controller")
               and p.name.split("/")[0] in ("esx1", "esx2", "ovs-esx1", "ovs-esx2")}
    before = {n: cpu_seconds(pid) for n, pid in on_path.items()}
    results = [iperf(lab.ns("vm1"), lab.ns("vm2"), "10.50.0.2", seconds) for _ in range(runs)]
    used = {n: round(cpu_seconds(pid) - before[n], 2) for n, pid in on_path.items()}
    return up_seconds, results, used


def one_bridge(seconds: int, runs: int) -> list[float]:
    """Two namespaces, one netdev OVS bridge (NORMAL) between them."""
    a, b, sw = f"{NAME}-a", f"{NAME}-b", f"{NAME}-br"
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for ns in (a, b, sw):
                netlink.create_netns(ns)
            dirs = NodeDirs(Path(tmp))
            procs = start_ovs("bridge", dirs, netns=sw)
            vsctl(dirs, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
            for ns, port, ip in ((a, "pa", "10.51.0.1/24"), (b, "pb", "10.51.0.2/24")):
                netlink.veth(ns, "eth0", sw, port)
                netlink.add_address(ns, "eth0", ip)
                vsctl(dirs, "add-port", "br0", port)
            return [iperf(a, b, "10.51.0.2", seconds) for _ in range(runs)]
        finally:
            for p in reversed(procs):
                stop(p)
            for ns in (a, b, sw):
                netlink.remove_netns(ns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (namespaces)")
    try:
        up_seconds, lab_runs, cpu = lab_path(args.seconds, args.runs)
    finally:
        down(LabState(NAME))
    bridge_runs = one_bridge(args.seconds, args.runs)
    lab_gbps, bridge_gbps = statistics.median(lab_runs), statistics.median(bridge_runs)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "lab_up_seconds": round(up_seconds, 2),
        "iperf_seconds": args.seconds,
        "lab_path_gbps": [round(x, 3) for x in lab_runs],
        "one_bridge_gbps": [round(x, 3) for x in bridge_runs],
        "lab_path_median_gbps": round(lab_gbps, 3),
        "one_bridge_median_gbps": round(bridge_gbps, 3),
        "ratio_lab_to_bridge": round(lab_gbps / bridge_gbps, 3),
        "cpu_seconds_during_lab_runs": cpu,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dataplane.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"lab up (default topology): {up_seconds:.1f} s")
    print(f"lab path (VM-proxy-OVS VM-Geneve-OVS VM-proxy-VM): {lab_gbps:.2f} Gbit/s "
          f"(runs {', '.join(f'{x:.2f}' for x in lab_runs)})")
    print(f"one OVS bridge between two namespaces:             {bridge_gbps:.2f} Gbit/s "
          f"(runs {', '.join(f'{x:.2f}' for x in bridge_runs)})")
    print(f"ratio lab/bridge: {lab_gbps / bridge_gbps:.2f}")
    print("CPU seconds used on the path during the lab runs:")
    for name, secs in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28s} {secs:6.2f}")


if __name__ == "__main__":
    main()
