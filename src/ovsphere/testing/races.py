"""Concurrent allocators in separate processes, for the VLAN race test.

:func:`allocator_process` runs in a process of its own (``spawn``): each
round it waits at a barrier shared with the other processes, then
``threads`` threads each ask :func:`~ovsphere.manager.allocation.allocate_ports`
for one NIC's VLAN at the same moment, through one NB client per thread, as
concurrent ``ovsphere attach`` commands would.  What each got is put on
``results``.
"""

from __future__ import annotations

import threading
from typing import Any

from ovsphere.logic.vlan import Owner, VlanPool
from ovsphere.manager.allocation import Request, allocate_ports
from ovsphere.ovn.connection import NbClient

VDS = "50 10 aa bb cc dd ee ff-00 11 22 33 44 55 66 77"


def allocator_process(
    remote: str, name: str, rounds: int, threads: int, barrier: Any, results: Any
) -> None:
    clients = [NbClient(remote) for _ in range(threads)]
    pools = {VDS: VlanPool("dvs-race")}
    try:
        for r in range(rounds):
            barrier.wait(timeout=60)
            got: list[tuple[int, str, int]] = []

            def one(i: int, r: int = r, got: list[tuple[int, str, int]] = got) -> None:
                owner = Owner(f"{name}-r{r}-t{i}", 4000)
                req = Request(owner, VDS, "race", f"02:00:00:{r:02x}:{i:02x}:01", owner.vm)
                port = allocate_ports(clients[i], [req], pools)[owner]
                got.append((r, owner.vm, port.vlan))

            workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            for item in got:
                results.put(item)
            barrier.wait(timeout=60)  # the parent checks and clears the round
            barrier.wait(timeout=60)
    finally:
        for c in clients:
            c.close()
