"""Binding lab VMs to OVN networks by hand: what the manager automates.

The lab's tests and its demo use :class:`LabControl` to do, step by step and
visibly, what an operator would without ovsphere's manager: give a VM's
dvPort its VLAN through the vSphere layer, make the OVN logical switch and
port (pinned to the OVS VM of the VM's host), set the OVS VM's ovn-controller
up, and add the patch pair that maps the VLAN to the logical port.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ovsphere.errors import NotFoundError, SetupError
from ovsphere.lab.daemons import NodeDirs, vsctl
from ovsphere.lab.layout import TRUNK_IF, Layout
from ovsphere.lab.nodes import configure_chassis
from ovsphere.lab.state import LabState
from ovsphere.lab.topology import Topology
from ovsphere.lab.up import endpoint
from ovsphere.model import Inventory, VirtualMachine
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory
from ovsphere.vsphere.prepare import assign_vlans

#: udhcpc's hook: what a guest's DHCP client does with a lease (address, MTU, route)
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    ;;
  deconfig) ip addr flush dev "$interface"; ip link set dev "$interface" up ;;
esac
exit 0
"""


@dataclass(frozen=True)
class Binding:
    vm: str
    logical_port: str
    vlan: int
    host: str
    mac: str
    ip: str | None


class LabControl:
    def __init__(self, name: str) -> None:
        self.state = LabState(name)
        if not self.state.exists:
            raise NotFoundError(f"no lab named {name!r} is up", fix="run `ovsphere lab up`")
        self.layout = Layout(Topology.model_validate(self.state.record.info["topology"]))

    def connection(self) -> Connection:
        return Connection(endpoint(self.state), verify_tls=False)

    def inventory(self) -> Inventory:
        with self.connection() as conn:
            return read_inventory(conn)

    def vm_host(self, vm: str) -> str | None:
        """The host moref vCenter has the VM on now."""
        return self._vm(self.inventory(), vm).host

    def dirs(self, node: str) -> NodeDirs:
        return NodeDirs(self.state.dir / node)

    def ns(self, node: str) -> str:
        return self.layout.ns(node)

    def run(self, node: str, *argv: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node's namespace."""
        result = subprocess.run(["ip", "netns", "exec", self.ns(node), *argv],
                                capture_output=True, text=True, timeout=timeout,
                                env=self.dirs(node).env(), check=False)
        if check and result.returncode != 0:
            raise SetupError(f"{node}: {' '.join(argv)} failed: {result.stderr.strip()}")
        return result

    def nbctl(self, *args: str) -> str:
        out = subprocess.run(["ovn-nbctl", f"--db={self.state.record.info['nb']}", *args],
                             capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise SetupError(f"ovn-nbctl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def sbctl(self, *args: str) -> str:
        return subprocess.run(["ovn-sbctl", f"--db={self.state.record.info['sb']}", *args],
                              capture_output=True, text=True, timeout=30, check=True).stdout

    def configure_transport(self, node: str, encap: str = "geneve") -> None:
        """ovn-controller settings, br-int, and (on an OVS VM) br-trunk on its trunk vNIC."""
        dirs = self.dirs(node)
        configure_chassis(self.layout, dirs, node, encap=encap)
        vsctl(dirs, "--may-exist", "add-br", "br-int", "--", "set", "bridge", "br-int",
              "datapath_type=netdev", "fail-mode=secure")
        if node in self.layout.ovs_vms:
            vsctl(dirs, "--may-exist", "add-br", "br-trunk", "--", "set", "bridge", "br-trunk",
                  "datapath_type=netdev", "--", "--may-exist", "add-port", "br-trunk", TRUNK_IF)

    def _vm(self, inv: Inventory, name: str) -> VirtualMachine:
        vm = next((v for v in inv.vms if v.name == name), None)
        if vm is None:
            raise NotFoundError(f"vCenter has no VM {name!r}")
        return vm

    def bind(self, vm_name: str, network: str, vlan: int, ip: str | None = None,
             nic: int = 0, encap: str = "geneve") -> Binding:
        """Put a vSphere VM's vNIC on an OVN network through its host's OVS VM."""
        inv = self.inventory()
        vm = self._vm(inv, vm_name)
        vnic = vm.nics[nic]
        host = next(h.name for h in inv.hosts if h.moref == vm.host)
        switch = next(s for s in inv.switches if s.uuid == vnic.backing.switch_uuid)
        with self.connection() as conn:
            assign_vlans(conn, switch, {vnic.backing.port_key or "": vlan})
        lp = f"{vm_name}-{nic}"
        addresses = f"{vnic.mac} {ip.split('/')[0]}" if ip else vnic.mac
        self.nbctl("--may-exist", "ls-add", network, "--", "--may-exist", "lsp-add", network, lp,
                   "--", "lsp-set-addresses", lp, addresses,
                   "--", "lsp-set-port-security", lp, addresses)
        self.pin(lp, vlan, host, mac=vnic.mac, encap=encap)
        if ip:
            self.run(vm_name, "ip", "addr", "replace", ip, "dev", f"eth{nic}")
        return Binding(vm_name, lp, vlan, host, vnic.mac, ip)

    def pin(self, lp: str, vlan: int, host: str, *, mac: str, encap: str = "geneve",
            previous: str | None = None) -> None:
        """Map VLAN ``vlan`` on host's OVS VM to logical port ``lp``; pin it there."""
        node = self.layout.ovs_vm(host)
        self.configure_transport(node, encap)
        trunk, inner = f"pt{vlan}", f"pi{vlan}"
        vsctl(self.dirs(node), "--may-exist", "add-port", "br-trunk", trunk, f"tag={vlan}",
              "--", "set", "interface", trunk, "type=patch", f"options:peer={inner}",
              "--", "--may-exist", "add-port", "br-int", inner,
              "--", "set", "interface", inner, "type=patch", f"options:peer={trunk}",
              f"external_ids:iface-id={lp}", f"external_ids:attached-mac={mac}")
        self.nbctl("lsp-set-options", lp, f"requested-chassis={node}")
        if previous and previous != host:
            old = self.layout.ovs_vm(previous)
            vsctl(self.dirs(old), "--if-exists", "del-port", "br-trunk", trunk,
                  "--", "--if-exists", "del-port", "br-int", inner)

    def dhcp(self, vm: str, ifname: str = "eth0", timeout: int = 20) -> str:
        """Take an address by DHCP, as a guest would (busybox udhcpc); return it."""
        script = self.state.dir / "udhcpc.sh"
        if not script.exists():
            script.write_text(UDHCPC_SCRIPT)
            script.chmod(0o755)
        out = self.run(vm, "busybox", "udhcpc", "-i", ifname, "-n", "-q", "-f", "-t",
                       str(timeout), "-T", "1", "-O", "mtu", "-s", str(script), check=False,
                       timeout=timeout * 2 + 10)
        got = self.run(vm, "ip", "-4", "-o", "addr", "show", "dev", ifname).stdout.split()
        if out.returncode != 0 or "inet" not in got:
            raise SetupError(f"{vm}: no DHCP lease on {ifname}: {out.stderr.strip()}",
                             fix="is the NIC bound? see `ovsphere --lab NAME status`")
        return got[got.index("inet") + 1].split("/")[0]

    def attach_kvm(self, vm: str, network: str) -> str:
        """Put a KVM guest on a network as OpenStack would (not ovsphere's job): its own
        logical port, bound by the KVM host's ovn-controller through ``iface-id``."""
        kvm = next(k for k in self.layout.topology.kvm if vm in [g.name for g in k.vms])
        mac = self.run(vm, "cat", "/sys/class/net/eth0/address").stdout.strip()
        dhcp = self.nbctl("--bare", "--columns=_uuid", "find", "dhcp_options",
                          f'external_ids:"ovsphere:network"={network}').strip()
        lp = f"kvm-{vm}"
        self.nbctl("--may-exist", "lsp-add", network, lp, "--", "lsp-set-addresses", lp,
                   f"{mac} dynamic", "--", "lsp-set-port-security", lp, mac,
                   "--", "lsp-set-options", lp, f"requested-chassis={kvm.name}")
        if dhcp:
            self.nbctl("lsp-set-dhcpv4-options", lp, dhcp)
        tap = f"tap{self.layout.kvm_vm_names.index(vm)}"
        vsctl(self.dirs(kvm.name), "set", "interface", tap, f"external_ids:iface-id={lp}")
        return lp

    def ping(self, node: str, address: str, count: int = 3, interval: float = 0.2,
             wait: float = 1) -> int:
        """Pings answered out of ``count``."""
        out = self.run(node, "ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W",
                       str(wait), address, check=False, timeout=count * (interval + wait) + 10)
        for line in out.stdout.splitlines():
            if "received" in line:
                return int(line.split(",")[1].split()[0])
        return 0
