"""A read-only view of the OVN southbound DB: where each logical port is active.

The manager reads it for one thing: knowing when a vMotion's destination
has taken a port over.  During a pre-armed vMotion a port is bound on two
chassis (``requested-chassis=src,dst``) and ``activation-strategy=rarp``
keeps the destination blocked until the VM announces itself there with a
RARP (ESX sends one for every vNIC as the VM resumes); ovn-controller then
records the activation in ``Port_Binding.options:additional-chassis-activated``.
Until it does, the source must stay armed: vCenter may report the VM on its
destination before its frames arrive there.

The replica holds only ``Port_Binding`` (name, chassis, options) and
``Chassis`` (name), so it stays small and quiet: ovn-controller's frequent
writes (``nb_cfg`` and friends, in ``Chassis_Private``) are not monitored.
"""

from __future__ import annotations

from typing import Any

from ovsdbapp.backend.ovs_idl import connection

from ovsphere.ovn.connection import TlsFiles, schema_helper, use_tls

ACTIVATED = "additional-chassis-activated"


class SbReader:
    def __init__(self, remote: str, *, tls: TlsFiles | None = None, timeout: float = 30) -> None:
        self.remote = remote
        if tls is not None:
            use_tls(tls)
        helper = schema_helper(
            remote,
            "OVN_Southbound",
            fix="check the manager_sb (or sb) setting and that the SB ovsdb-server runs",
        )
        helper.register_columns("Port_Binding", ["logical_port", "chassis", "options"])
        helper.register_columns("Chassis", ["name"])
        self.idl = connection.OvsdbIdl(remote, helper, leader_only=False)
        self.connection = connection.Connection(self.idl, timeout=timeout)
        self.connection.start()

    @property
    def change_seqno(self) -> int:
        return int(self.idl.change_seqno)

    def active_chassis(self) -> dict[str, frozenset[str]]:
        """Logical port name -> the chassis it is active on (main, then activated ones)."""
        with self.connection.lock:
            rows = list(self.idl.tables["Port_Binding"].rows.values())
            return {row.logical_port: _active(row) for row in rows}

    def close(self) -> None:
        self.connection.stop()


def _active(row: Any) -> frozenset[str]:
    names = {c.name for c in row.chassis}
    extra = dict(row.options).get(ACTIVATED, "")
    names.update(n for n in extra.split(",") if n)
    return frozenset(names)
