"""Errors of the transport-node layer, in ovsphere's one taxonomy.

The OVSDB connection (:mod:`ovsphere.transport.connection`) translates socket,
TLS and transaction failures into these at the boundary, and the planner raises
them for a desired state that cannot be built on the node (a trunk vNIC that is
not there).  Each message names the node (its OVSDB remote) and the fix.
"""

from __future__ import annotations

from ovsphere.errors import ConflictError, OvsphereError

__all__ = [
    "ConflictError",
    "TransportError",
    "TransportUnreachable",
    "TrunkNicMissing",
]


class TransportError(OvsphereError):
    """An OVS VM refused an operation, or its state cannot carry what is desired."""


class TransportUnreachable(TransportError):
    """The OVS VM's OVSDB server could not be reached (in time); try again later."""

    temporary = True


class TrunkNicMissing(TransportError):
    """No interface of the OVS VM has the trunk vNIC's MAC."""
