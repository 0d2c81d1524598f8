"""Creating and repairing the isolated port group.

The spec always states every policy field the trick depends on (vCenter
replaces the whole policy object), carries the port group's ``configVersion``
on repair so a concurrent edit is refused rather than overwritten, and sets the
teaming to no active and no standby uplink.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from ovsphere.logic.port_policy import NO_UPLINKS, PORTGROUP_DEFAULT
from ovsphere.model import Binding, Portgroup
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.ports import switch_ref
from ovsphere.vsphere.specs import setting_to_vim
from ovsphere.vsphere.tasks import wait_for_tasks

_V = vim.dvs.VmwareDistributedVirtualSwitch


def _policy() -> Any:
    return _V.VMwarePortgroupPolicy(
        vlanOverrideAllowed=True,
        securityPolicyOverrideAllowed=True,
        blockOverrideAllowed=True,
        uplinkTeamingOverrideAllowed=False,
        shapingOverrideAllowed=False,
        vendorConfigOverrideAllowed=False,
        livePortMovingAllowed=False,
        # Per-port VLANs must survive a VM power cycle or NIC disconnect.
        portConfigResetAtDisconnect=False,
        ipfixOverrideAllowed=False,
        networkResourcePoolOverrideAllowed=False,
        trafficFilterOverrideAllowed=False,
    )


def _spec(name: str, num_ports: int, config_version: str | None = None) -> Any:
    return vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=name,
        type=Binding.STATIC.value,
        numPorts=num_ports,
        autoExpand=True,
        description="ovsphere isolated port group: no uplinks, one VLAN per VM port",
        defaultPortConfig=setting_to_vim(PORTGROUP_DEFAULT, teaming=NO_UPLINKS),
        policy=_policy(),
        configVersion=config_version,
    )


def create_portgroup(conn: Connection, switch: str, name: str, num_ports: int) -> None:
    def run(si: Any) -> None:
        task = switch_ref(si, switch).AddDVPortgroup_Task([_spec(name, num_ports)])
        wait_for_tasks(si, [task], f"create port group {name}")

    conn.call(f"create port group {name}", run)


def repair_portgroup(conn: Connection, pg: Portgroup, num_ports: int) -> None:
    def run(si: Any) -> None:
        ref = vim.dvs.DistributedVirtualPortgroup(pg.moref, si._stub)
        task = ref.ReconfigureDVPortgroup_Task(_spec(pg.name, num_ports, pg.config_version))
        wait_for_tasks(si, [task], f"repair port group {pg.name}")

    conn.call(f"repair port group {pg.name}", run)
