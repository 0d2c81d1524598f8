"""VLAN allocation: one VLAN per VM NIC, unique across a whole vDS.

Pure: the caller reads the ledger (who holds which VLAN on a vDS), asks for
VLANs here, and writes the result in a transaction that aborts if the ledger
changed meanwhile (see ``ovsphere.ovn.ledger``).  Unique per vDS, not per
host or port group, because vMotion carries a port and its VLAN to any host
of the vDS.  VLAN 0 and 4095 never; operators reserve ranges (VLANs their
physical network uses on the same OVS VMs, for instance).

Allocation is deterministic (lowest free VLAN first, or the one asked for if
it is free) so that two managers computing the same plan from the same
ledger collide, and one of them retries, rather than silently diverging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ovsphere.errors import OvsphereError
from ovsphere.model import VLAN_MAX, VLAN_MIN, VlanRange


class VlanExhausted(OvsphereError):
    """No VLAN left on a vDS."""


@dataclass(frozen=True)
class Owner:
    """Who holds a VLAN: one vNIC of one VM."""

    vm: str  # the VM's instance UUID (stable across renames and re-registration)
    nic: int  # the vNIC's device key


@dataclass(frozen=True)
class VlanPool:
    switch: str  # the vDS's name, for messages
    reserved: tuple[VlanRange, ...] = ()

    def usable(self, vlan: int) -> bool:
        return VLAN_MIN <= vlan <= VLAN_MAX and not any(
            r.start <= vlan <= r.end for r in self.reserved
        )

    @property
    def size(self) -> int:
        return sum(1 for v in range(VLAN_MIN, VLAN_MAX + 1) if self.usable(v))


def allocate(
    pool: VlanPool,
    ledger: Mapping[int, Owner],
    wanted: Sequence[Owner],
    *,
    preferred: Mapping[Owner, int] | None = None,
) -> dict[Owner, int]:
    """A VLAN for every owner in ``wanted`` that has none in ``ledger``.

    Owners already in the ledger keep theirs (the result includes them).  A
    ``preferred`` VLAN (the one vCenter already has on the port, say) is used
    when it is usable and free.  Raises :class:`VlanExhausted` naming the vDS.
    """
    held = {owner: vlan for vlan, owner in ledger.items()}
    taken = set(ledger)
    result: dict[Owner, int] = {}
    pending = []
    for owner in wanted:
        if owner in held:
            result[owner] = held[owner]
            continue
        vlan = (preferred or {}).get(owner)
        if vlan is not None and pool.usable(vlan) and vlan not in taken:
            result[owner] = vlan
            taken.add(vlan)
        else:
            pending.append(owner)
    free = (v for v in range(VLAN_MIN, VLAN_MAX + 1) if pool.usable(v) and v not in taken)
    for owner in pending:
        vlan = next(free, None)
        if vlan is None:
            raise VlanExhausted(
                f"no VLAN left on vDS {pool.switch}: {len(taken)} of {pool.size} usable VLANs "
                f"are held, {len(pending) - pending.index(owner)} more NICs need one",
                fix="attach these VMs through another vDS (give each OVS VM a trunk vNIC on "
                "it), detach unused NICs, or narrow the reserved ranges",
            )
        result[owner] = vlan
        taken.add(vlan)
    return result


def release(ledger: Mapping[int, Owner], gone: Iterable[Owner]) -> dict[int, Owner]:
    """The ledger without the VLANs of ``gone`` owners."""
    drop = set(gone)
    return {vlan: owner for vlan, owner in ledger.items() if owner not in drop}


def duplicates(entries: Iterable[tuple[int, Owner]]) -> dict[int, list[Owner]]:
    """VLANs claimed by more than one owner (a damaged ledger), for repair."""
    seen: dict[int, list[Owner]] = {}
    for vlan, owner in entries:
        seen.setdefault(vlan, []).append(owner)
    return {v: owners for v, owners in seen.items() if len(owners) > 1}
