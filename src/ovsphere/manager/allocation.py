"""VLANs handed out through the NB ledger: plan, write, retry on conflict.

:func:`allocate_ports` is the one way a VM NIC gets a VLAN, whether an
``ovsphere attach`` asked or a custom attribute did: it reads the ledger of
each vDS concerned (ovsphere's logical ports, :mod:`ovsphere.ovn.ports`)
from the NB replica, lets the pure allocator pick VLANs, and writes every new
port in one transaction that also checks and bumps each vDS's ledger
generation.  Another writer (a second manager, a concurrent ``attach``) that
committed first makes the transaction fail with
:class:`~ovsphere.errors.ConflictError`; the replica then catches up and the
whole plan is made again, up to ``attempts`` times.  Safe from any number of
threads and processes: the database, not a lock here, serialises them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ovsphere.errors import ConflictError, PreconditionError
from ovsphere.logic.vlan import Owner, VlanPool, allocate
from ovsphere.manager import faults
from ovsphere.model import LogicalPort
from ovsphere.ovn import ports as ovn_ports
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.networks import read_networks

log = logging.getLogger(__name__)

#: a VLAN passed by a dvPort nobody holds in the ledger (see desired._busy)
UNOWNED = Owner("(a dvPort with no ovsphere owner)", -1)


@dataclass(frozen=True)
class Request:
    """One NIC that should hold a VLAN on ``vds`` and a port on ``network``."""

    owner: Owner
    vds: str
    network: str
    mac: str
    vm_name: str
    ip: str | None = None
    intent: str = "command"
    chassis: tuple[str, ...] = ()  # requested-chassis from the start: never unpinned
    preferred: int | None = None


def allocate_ports(
    nb: NbClient,
    requests: Sequence[Request],
    pools: Mapping[str, VlanPool],
    *,
    busy: Mapping[str, frozenset[int]] | None = None,
    attempts: int = 30,
) -> dict[Owner, LogicalPort]:
    """A logical port (and so a VLAN) for every request; existing ones are returned as is.

    Raises :class:`~ovsphere.logic.vlan.VlanExhausted` naming the vDS when one
    is full, :class:`PreconditionError` when a NIC already holds a port on
    another network, and ConflictError when ``attempts`` tries all lost.
    """
    for attempt in range(1, attempts + 1):
        seen: dict[str, int] = {}
        try:
            return _try(nb, requests, pools, busy or {}, seen)
        except ConflictError as exc:
            if attempt == attempts:
                raise
            log.debug("allocation attempt %d lost a race: %s", attempt, exc.message)
            # Planning again before the replica has the winner's commit would lose again:
            # wait for it, then a little jitter so the losers do not retry in lockstep.
            _wait_past(nb, seen)
            time.sleep(random.uniform(0, 0.01) * attempt)
    raise AssertionError("unreachable")


def _wait_past(nb: NbClient, seen: Mapping[str, int], timeout: float = 2.0) -> None:
    """Until the replica shows a ledger generation other than ``seen`` for some vDS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with nb.connection.lock:
            if any(ovn_ports.generation(nb, vds) != gen for vds, gen in seen.items()):
                return
        time.sleep(0.002)


def _try(
    nb: NbClient,
    requests: Sequence[Request],
    pools: Mapping[str, VlanPool],
    busy: Mapping[str, frozenset[int]],
    seen: dict[str, int],
) -> dict[Owner, LogicalPort]:
    """One attempt; ``seen`` receives the ledger generations it planned from."""
    with nb.connection.lock:  # a consistent view of the replica, then no I/O until the write
        existing = {Owner(p.vm, p.nic): p for p in ovn_ports.read_ports(nb)}
        generations = {r.vds: ovn_ports.generation(nb, r.vds) for r in requests}
        dhcp = {n.name: n.dhcp for n in read_networks(nb) if n.dhcp}
    seen.update(generations)
    out: dict[Owner, LogicalPort] = {}
    new: list[LogicalPort] = []
    by_vds: dict[str, list[Request]] = {}
    for r in requests:
        have = existing.get(r.owner)
        if have is None:
            by_vds.setdefault(r.vds, []).append(r)
        elif have.network != r.network:
            raise PreconditionError(
                f"NIC {r.owner.nic} of VM {r.vm_name} is attached to network {have.network}",
                fix="detach it first (`ovsphere detach`), then attach it to the new network",
            )
        else:
            out[r.owner] = have
    for vds, wanted in by_vds.items():
        ledger = ovn_ports.ledger(list(existing.values()), vds)
        for vlan in busy.get(vds, frozenset()):
            ledger.setdefault(vlan, UNOWNED)
        preferred = {r.owner: r.preferred for r in wanted if r.preferred is not None}
        vlans = allocate(pools[vds], ledger, [r.owner for r in wanted], preferred=preferred)
        for r in wanted:
            lp = LogicalPort(
                name=ovn_ports.port_name(r.owner.vm, r.owner.nic),
                network=r.network,
                mac=r.mac,
                vds=vds,
                vlan=vlans[r.owner],
                vm=r.owner.vm,
                nic=r.owner.nic,
                vm_name=r.vm_name,
                ip=r.ip,
                requested_chassis=r.chassis,
                intent=r.intent,
            )
            new.append(lp)
            out[r.owner] = lp
    if new:
        ovn_ports.write_ports(
            nb, generations={v: generations[v] for v in by_vds}, add=new, dhcp=dhcp
        )
        faults.point("allocate:after-write")
    return out
