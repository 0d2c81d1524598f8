"""What ``ovsphere network | attach | detach | status`` do, for the CLI (and an API).

They write intent and leave the work to the manager:

- ``attach`` finds the VM NIC (by device key or MAC; the only NIC when the VM
  has one), moves it onto the isolated port group when it is elsewhere, and
  writes its logical port (its VLAN held, pinned to the OVS VM of its host)
  through :func:`~ovsphere.manager.allocation.allocate_ports`; the manager
  then sets the dvPort, the patch pair and ``requested-chassis``.
- ``detach`` marks the port; the manager blocks the dvPort, removes the patch
  and only then deletes the port, releasing the VLAN.
- ``status`` plans from a fresh snapshot, as the manager would, and reports
  every NIC of the isolated port groups: nothing is written.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ovsphere.config import Settings
from ovsphere.errors import ConfigError, NotFoundError, PreconditionError
from ovsphere.logic.ovs_vms import find_ovs_vms
from ovsphere.logic.vlan import Owner
from ovsphere.manager import faults
from ovsphere.manager.allocation import Request, allocate_ports
from ovsphere.manager.desired import INTENT_ATTRIBUTE, NicStatus, nodes_by_host, plan
from ovsphere.manager.snapshot import (
    managed_switches,
    moves_of,
    node_settings,
    pools,
    read_snapshot,
    rule_of,
)
from ovsphere.model import Inventory, LogicalPort, Network, Nic, VirtualMachine
from ovsphere.ovn import networks as ovn_networks
from ovsphere.ovn import ports as ovn_ports
from ovsphere.ovn.connection import NbClient
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.nics import migrations_in_progress, move_nic

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def parse_transport(text: str) -> str:
    """``geneve``, ``vxlan`` or ``vlan:PHYSNET:ID``; ConfigError names the problem."""
    if text in ("geneve", "vxlan"):
        return text
    m = re.fullmatch(r"vlan:([A-Za-z0-9_.-]+):(\d+)", text)
    if m and 1 <= int(m.group(2)) <= 4094:
        return text
    raise ConfigError(
        f"--transport {text!r} is not geneve, vxlan or vlan:PHYSNET:ID (ID 1-4094)",
        fix="e.g. --transport vlan:physnet1:100 for VLAN 100 of physical network physnet1",
    )


def create_network(
    nb: NbClient,
    name: str,
    *,
    vni: int | None = None,
    cidr: str | None = None,
    transport: str = "geneve",
    transport_mtu: int = 1600,
) -> Network:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"network name {name!r} is not valid",
            fix="use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if vni is not None and not 1 <= vni <= 16_777_215:
        raise ConfigError(f"--vni {vni} is not within 1-16777215 (24 bits)")
    if cidr is not None:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ConfigError(f"--cidr {cidr!r}: {exc}", fix="e.g. --cidr 10.10.0.0/24") from None
        if net.version != 4 or net.num_addresses < 8:
            raise ConfigError(
                f"--cidr {cidr}: OVN's native DHCP here serves IPv4 networks of /29 or larger"
            )
        cidr = str(net)
    net_model = Network(name=name, cidr=cidr, vni=vni, transport=parse_transport(transport))
    return ovn_networks.create_network(nb, net_model, transport_mtu=transport_mtu)


def list_networks(nb: NbClient) -> list[tuple[Network, int]]:
    """Every network with how many VM NIC ports it has."""
    ports = ovn_ports.read_ports(nb)
    return [
        (n, sum(1 for p in ports if p.network == n.name)) for n in ovn_networks.read_networks(nb)
    ]


def delete_network(nb: NbClient, name: str, *, force: bool = False) -> list[str]:
    return ovn_networks.delete_network(nb, name, force=force)


@dataclass(frozen=True)
class Attached:
    port: LogicalPort
    moved: bool  # the NIC was moved onto the isolated port group


def find_vm(inv: Inventory, name: str) -> VirtualMachine:
    vm = next((v for v in inv.vms if name in (v.name, v.moref, v.instance_uuid)), None)
    if vm is None:
        raise NotFoundError(
            f"vCenter has no VM {name!r}", fix="name it as `ovsphere inventory` lists it"
        )
    return vm


def find_nic(vm: VirtualMachine, nic: str | None) -> Nic:
    if nic is None:
        if len(vm.nics) == 1:
            return vm.nics[0]
        have = ", ".join(f"{n.key} ({n.mac})" for n in vm.nics) or "none"
        raise PreconditionError(
            f"VM {vm.name} has {len(vm.nics)} network adapters ({have})",
            fix="choose one with --nic KEY or --nic MAC",
        )
    wanted = nic.lower().replace("-", ":")
    found = next((n for n in vm.nics if str(n.key) == nic or n.mac.lower() == wanted), None)
    if found is None:
        have = ", ".join(f"{n.key} ({n.mac})" for n in vm.nics) or "none"
        raise NotFoundError(f"VM {vm.name} has no network adapter {nic} (it has: {have})")
    return found


def _check_ip(network: Network, ip: str | None, taken: dict[str, str]) -> str | None:
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise ConfigError(f"--ip {ip!r} is not an IP address") from None
    if network.cidr:
        cidr = ipaddress.ip_network(network.cidr)
        if address not in cidr or address in (cidr.network_address, cidr.broadcast_address):
            raise ConfigError(
                f"--ip {ip} is not a host address of network {network.name} ({network.cidr})"
            )
        if address == next(cidr.hosts()):
            raise ConfigError(
                f"--ip {ip} is the DHCP server's address of {network.name}",
                fix="choose another address",
            )
    if str(address) in taken:
        raise PreconditionError(
            f"--ip {ip} is already used on {network.name} by {taken[ip]}",
            fix="choose another address",
        )
    return str(address)


def attach(
    vc: Connection,
    nb: NbClient,
    settings: Settings,
    vm_name: str,
    network: str,
    *,
    nic: str | None = None,
    ip: str | None = None,
) -> Attached:
    inv = read_inventory(vc)
    vm = find_vm(inv, vm_name)
    vnic = find_nic(vm, nic)
    if vm.attributes.get(INTENT_ATTRIBUTE):
        raise PreconditionError(
            f"VM {vm.name} is attached by its custom attribute {INTENT_ATTRIBUTE}="
            f"{vm.attributes[INTENT_ATTRIBUTE]!r}",
            fix="change the attribute instead, or clear it to attach by command",
        )
    nets = {n.name: n for n in ovn_networks.read_networks(nb)}
    net = nets.get(network)
    if net is None or net.deleting:
        raise NotFoundError(
            f"ovsphere has no network {network!r}", fix="create it with `ovsphere network create`"
        )
    switches = managed_switches(inv, settings)
    if not switches:
        raise PreconditionError(
            f"no vDS has the isolated port group {settings.portgroup}",
            fix="run `ovsphere prepare` first",
        )
    sw = next((s for s in switches if s.uuid == vnic.backing.switch_uuid), None)
    if sw is None and len(switches) > 1:
        names = ", ".join(f"{s.portgroup_name} on {s.name}" for s in switches)
        raise PreconditionError(
            f"VM {vm.name} NIC {vnic.key} is on no vDS ovsphere manages, and several are",
            fix=f"move the NIC onto one of the isolated port groups first: {names}",
        )
    moved = False
    if sw is None or vnic.backing.portgroup_key != sw.portgroup:
        sw = sw or switches[0]
        move_nic(vc, vm.moref, vnic.key, sw.uuid, sw.portgroup)
        moved = True
        faults.point("attach:after-nic-move")
    taken = {  # addresses of the network's other NICs (attaching again is a no-op)
        p.ip: p.vm_name
        for p in ovn_ports.read_ports(nb)
        if p.network == network and p.ip and (p.vm, p.nic) != (vm.instance_uuid, vnic.key)
    }
    fixed = _check_ip(net, ip, taken)
    chassis = node_settings(settings).chassis
    node = _ovs_vm_of(inv, settings, vm.host)
    pin = (chassis[node].system_id,) if node is not None and node in chassis else ()
    owner = Owner(vm.instance_uuid, vnic.key)
    got = allocate_ports(
        nb,
        [Request(owner, sw.uuid, network, vnic.mac, vm.name, ip=fixed, chassis=pin)],
        pools(switches, settings),
    )
    return Attached(got[owner], moved)


def _ovs_vm_of(inv: Inventory, settings: Settings, host: str | None) -> str | None:
    node = nodes_by_host(find_ovs_vms(inv, (), rule_of(settings))).get(host or "")
    return node.name if node else None


def detach(vc: Connection, nb: NbClient, vm_name: str, *, nic: str | None = None) -> list[str]:
    """Mark the VM's ports (or one NIC's) for release; return their names."""
    inv = read_inventory(vc)
    vm = next((v for v in inv.vms if vm_name in (v.name, v.moref, v.instance_uuid)), None)
    ports = ovn_ports.read_ports(nb)
    if vm is not None:
        mine = [p for p in ports if p.vm == vm.instance_uuid]
        if vm.attributes.get(INTENT_ATTRIBUTE) and any(p.intent == "attribute" for p in mine):
            raise PreconditionError(
                f"VM {vm.name} is attached by its custom attribute {INTENT_ATTRIBUTE}",
                fix="clear or change the attribute: the manager then detaches it",
            )
        if nic is not None:
            key = find_nic(vm, nic).key
            mine = [p for p in mine if p.nic == key]
    else:  # the VM is gone from vCenter: its ports are still detachable by name
        mine = [p for p in ports if vm_name in (p.vm_name, p.vm)]
    if not mine:
        raise NotFoundError(
            f"VM {vm_name} has no attached NIC{f' {nic}' if nic else ''}",
            fix="see `ovsphere status`",
        )
    names = [p.name for p in mine if not p.detach]
    if names:
        ovn_ports.mark_detach(nb, names)
    return [p.name for p in mine]


def status(vc: Connection, nb: NbClient, settings: Settings) -> tuple[NicStatus, ...]:
    inv = read_inventory(vc)
    moves = moves_of(migrations_in_progress(vc), inv)
    return plan(read_snapshot(vc, nb, settings, migrations=moves, inventory=inv)).status


def wait_for(
    check: Callable[[], tuple[bool, str]], *, timeout: float, interval: float = 0.2
) -> str:
    """Poll ``check`` (done, what) until done; PreconditionError with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        done, what = check()
        if done:
            return what
        if time.monotonic() > deadline:
            raise PreconditionError(
                f"not done after {timeout:g} s: {what}",
                fix="is `ovsphere manager run` running? see `ovsphere status`",
            )
        time.sleep(interval)
