"""Small constructors of model values for table-driven unit tests.

A whole datacenter in a few lines: ``world(hosts=3)`` returns an Inventory
with one vDS, the isolated port group and one OVS VM per host, whose ports
(:func:`ports_for`) already have the shapes ``prepare`` would give them.
"""

from __future__ import annotations

from dataclasses import replace

from ovsphere.logic.port_policy import PORTGROUP_DEFAULT, trunk_port, vm_port
from ovsphere.model import (
    Binding,
    Connectee,
    Host,
    Inventory,
    Nic,
    NicBacking,
    OverridePolicy,
    Port,
    Portgroup,
    PortSetting,
    PowerState,
    Switch,
    Teaming,
    VirtualMachine,
    VlanRange,
)

SWITCH_UUID = "50 2a 00 00 00 00 00 01"
FULL_TRUNK = (VlanRange(0, 4094),)


def isolated_pg(**changes: object) -> Portgroup:
    pg = Portgroup(
        moref="dvportgroup-10",
        key="dvportgroup-10",
        name="ovsphere-isolated",
        switch_uuid=SWITCH_UUID,
        binding=Binding.STATIC,
        num_ports=64,
        auto_expand=True,
        default=PORTGROUP_DEFAULT,
        teaming=Teaming(),
        overrides=OverridePolicy(vlan=True, security=True, block=True),
        config_version="1",
    )
    return replace(pg, **changes)  # type: ignore[arg-type]


def nic(key: int, port: str | None, pg: Portgroup | None = None, mac: str = "") -> Nic:
    pg = pg or isolated_pg()
    return Nic(
        key=key,
        label=f"Network adapter {key - 3999}",
        mac=mac or f"00:50:56:00:{key % 256:02x}:{int(port or 0) % 256:02x}",
        backing=NicBacking("dvport", pg.switch_uuid, pg.key, port),
    )


def vm(
    moref: str,
    name: str,
    host: str,
    *nics: Nic,
    power: PowerState = PowerState.ON,
    attributes: dict[str, str] | None = None,
) -> VirtualMachine:
    return VirtualMachine(moref, name, f"uuid-{moref}", host, power, tuple(nics), attributes or {})


def world(hosts: int = 3, vms_per_host: int = 1, pg: Portgroup | None = None) -> Inventory:
    """Hosts h1..hN, an OVS VM ``ovs-hN`` on each (port 1N), VMs on ports 2NM."""
    pg = pg or isolated_pg()
    host_list = tuple(
        Host(f"host-{i}", f"esx{i}", "datacenter-1", "cluster-1", "connected", False)
        for i in range(1, hosts + 1)
    )
    vms = []
    for i in range(1, hosts + 1):
        vms.append(vm(f"vm-ovs{i}", f"ovs-esx{i}", f"host-{i}", nic(4000, f"1{i}", pg)))
        for j in range(1, vms_per_host + 1):
            vms.append(vm(f"vm-{i}{j}", f"app-{i}-{j}", f"host-{i}", nic(4000, f"2{i}{j}", pg)))
    switch = Switch(
        "dvs-1",
        SWITCH_UUID,
        "dvs",
        "datacenter-1",
        tuple(h.moref for h in host_list),
        ("dvportgroup-9",),
        ("uplink1",),
        (pg.key,),
    )
    return Inventory(hosts=host_list, switches=(switch,), portgroups=(pg,), vms=tuple(vms))


def ports_for(
    inv: Inventory, vlans: dict[str, int] | None = None, trunk: tuple[VlanRange, ...] = FULL_TRUNK
) -> list[Port]:
    """Ports for every NIC in ``inv``: OVS VM ports trunked, VM ports on ``vlans``.

    VM ports not in ``vlans`` get VLAN 100 + their index, unblocked.
    """
    ports = []
    index = 0
    for v in inv.vms:
        for n in v.nics:
            key = n.backing.port_key or ""
            if v.name.startswith("ovs-"):
                setting = trunk_port(trunk)
            else:
                index += 1
                setting = vm_port((vlans or {}).get(key, 100 + index))
            ports.append(
                Port(
                    key,
                    SWITCH_UUID,
                    n.backing.portgroup_key,
                    setting,
                    "1",
                    Connectee(v.moref, n.key),
                )
            )
    return ports


def free_port(key: str, setting: PortSetting = PORTGROUP_DEFAULT) -> Port:
    return Port(key, SWITCH_UUID, "dvportgroup-10", setting, "1", None)


def with_vm_port(port: Port, vlan: int) -> Port:
    return replace(port, setting=vm_port(vlan))
