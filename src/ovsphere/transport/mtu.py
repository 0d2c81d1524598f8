"""Is the transport network's MTU big enough for guest frames plus tunnel headers?

Geneve adds 58 bytes to every guest frame and VXLAN 50; userspace OVS drops a
tunnel packet that does not fit the transport interface's MTU without a word
(only "Message too long" in the vswitchd log).  Operators keep guests at 1500
and give the transport network 1600 (ARCHITECTURE.md, facts), so this check
says which interface is too small and what to raise it to.

Pure: it reads the MTUs of a :class:`NodeObserved` (the ``mtu`` column that
ovs-vswitchd fills for each Interface), so the manager calls it after each
:func:`~ovsphere.transport.node.read_node`, from any thread.
"""

from __future__ import annotations

from ovsphere.transport.model import (
    GENEVE_OVERHEAD,
    RECOMMENDED_TRANSPORT_MTU,
    VXLAN_OVERHEAD,
    MtuProblem,
    NodeObserved,
)

_TUNNEL_NAMES = {GENEVE_OVERHEAD: "Geneve", VXLAN_OVERHEAD: "VXLAN"}


def check_mtu(
    observed: NodeObserved, transport_interface: str, overhead: int, guest_mtu: int = 1500
) -> list[MtuProblem]:
    """Problems with ``transport_interface`` (the tunnel endpoint's, e.g. br-phy or eth1)."""
    needed = guest_mtu + overhead
    tunnel = _TUNNEL_NAMES.get(overhead, f"a tunnel adding {overhead} bytes")
    raise_to = max(RECOMMENDED_TRANSPORT_MTU, needed)
    mtu = observed.mtu.get(transport_interface)
    if mtu is None:
        return [
            MtuProblem(
                transport_interface,
                0,
                needed,
                f"transport interface {transport_interface} has no MTU in the OVS VM's "
                f"database, so {guest_mtu}-byte guest frames through {tunnel} (needs "
                f"{needed}) cannot be checked: name the OVS interface that carries the "
                "tunnels (e.g. br-phy or eth1)",
            )
        ]
    if mtu >= needed:
        return []
    return [
        MtuProblem(
            transport_interface,
            mtu,
            needed,
            f"transport MTU {mtu} on {transport_interface} is too small for {guest_mtu}-byte "
            f"guest frames through {tunnel} (needs {needed}): raise it to {raise_to}",
        )
    ]
