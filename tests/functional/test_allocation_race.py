"""8 concurrent attaches from 2 processes never share a VLAN (50 rounds, real NB)."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from ovsphere.model import Network
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.networks import create_network
from ovsphere.ovn.ports import read_ports, write_ports
from ovsphere.testing.races import VDS, allocator_process

pytestmark = pytest.mark.functional

ROUNDS = 50
PROCESSES = 2
THREADS = 4


def test_concurrent_attaches_from_two_processes_never_share_a_vlan(ovn_central):
    with NbClient(ovn_central.nb_unix) as nb:
        create_network(nb, Network("race"))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=allocator_process,
            args=(ovn_central.nb_unix, f"p{i}", ROUNDS, THREADS, barrier, results),
        )
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        with NbClient(ovn_central.nb_unix) as nb:
            for r in range(ROUNDS):
                barrier.wait(timeout=120)  # go
                barrier.wait(timeout=120)  # all allocated
                got = []
                while len(got) < PROCESSES * THREADS:
                    got.append(results.get(timeout=30))
                vlans = [vlan for _, _, vlan in got]
                assert len(set(vlans)) == len(vlans), f"round {r}: a VLAN given twice: {got}"
                # This process's replica may lag the allocators' commits: wait for it.
                deadline = time.monotonic() + 10
                while len(ports := [p for p in read_ports(nb) if p.vds == VDS]) < len(vlans):
                    assert time.monotonic() < deadline, f"round {r}: the NB shows {ports}"
                    time.sleep(0.01)
                assert sorted(p.vlan for p in ports) == sorted(vlans)
                # Release them all: the next round races for the same low VLANs again.
                # (Deleting frees VLANs and cannot duplicate one: no ledger check, as the
                # manager's release does it.)
                write_ports(nb, generations={}, delete=[p.name for p in ports])
                barrier.wait(timeout=120)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
