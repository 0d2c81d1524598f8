"""Building the lab's nodes: fabric, OVN central, ESX hosts, OVS VMs, KVM hosts, VMs.

Each function makes one node and records what it makes (namespace first,
then processes) in the lab state, so ``down`` can remove it whatever happens
next.  Links into the fabric are named by node index (interface names have
15 characters at most).
"""

from __future__ import annotations

from ovsphere.lab import netlink
from ovsphere.lab.daemons import NodeDirs, spawn, start_ovs, vsctl
from ovsphere.lab.layout import (
    MGMT_IF,
    NB_PORT,
    OVSDB_PORT,
    RAFT_NB_PORT,
    RAFT_SB_PORT,
    SB_PORT,
    TRANSPORT_IF,
    Layout,
)
from ovsphere.lab.ovn_central import Central, Member, start_central
from ovsphere.lab.state import LabState

UNDERLAY_BR = "underlay"
MGMT_BR = "mgmt"
PHYS_BR = "phys"  # the physical LAN behind the ESX hosts' uplinks
GUEST_MTU = 1500


def make_ns(state: LabState, ns: str) -> None:
    state.add_namespace(ns)
    netlink.create_netns(ns)


def fabric(layout: Layout, state: LabState) -> None:
    ns = layout.fabric
    make_ns(state, ns)
    mtu = layout.topology.underlay_mtu
    netlink.bridge(ns, UNDERLAY_BR, mtu=mtu)
    netlink.bridge(ns, MGMT_BR)
    netlink.bridge(ns, PHYS_BR)


def _fabric_link(
    layout: Layout,
    node_ns: str,
    ifname: str,
    bridge: str,
    tag: str,
    *,
    mtu: int = GUEST_MTU,
    mac: str | None = None,
) -> None:
    netlink.veth(node_ns, ifname, layout.fabric, tag, mtu=mtu, mac_a=mac)
    netlink.enslave(layout.fabric, tag, bridge)


def central(layout: Layout, state: LabState) -> Central:
    members = []
    for i in range(layout.central_members):
        ns = layout.central(i)
        make_ns(state, ns)
        _fabric_link(layout, ns, "eth0", MGMT_BR, f"mc{i}")
        ip = layout.central_ip(i)
        netlink.add_address(ns, "eth0", f"{ip}/{layout.mgmt_prefix}")
        members.append(
            Member(
                dirs=NodeDirs(state.node_dir(f"central{i}")),
                ip=str(ip),
                nb_port=NB_PORT,
                sb_port=SB_PORT,
                raft_nb_port=RAFT_NB_PORT,
                raft_sb_port=RAFT_SB_PORT,
                netns=ns,
            )
        )
    c = Central(tuple(members))
    start_central(c, state=state)
    return c


def esx_host(layout: Layout, state: LabState, host: str) -> NodeDirs:
    """The host's proxy switches: one netdev bridge per vDS, each with its uplink."""
    ns = layout.ns(host)
    make_ns(state, ns)
    dirs = NodeDirs(state.node_dir(host))
    start_ovs(host, dirs, state=state, netns=ns)
    index = layout.topology.hosts.index(host)
    for i, sw in enumerate(layout.topology.switches):
        if host not in layout.topology.members(sw):
            continue
        br = layout.bridge(i)
        uplink = layout.uplink_ifname(i)
        _fabric_link(layout, ns, uplink, PHYS_BR, f"up{index}x{i}")
        # fail-mode secure: nothing passes until the agent loads the vDS flows.
        vsctl(
            dirs,
            "--may-exist",
            "add-br",
            br,
            "--",
            "set",
            "bridge",
            br,
            "datapath_type=netdev",
            "fail-mode=secure",
            "protocols=OpenFlow13",
            "--",
            "--may-exist",
            "add-port",
            br,
            uplink,
        )
    return dirs


def transport_node(layout: Layout, state: LabState, node: str, *, kvm: bool = False) -> NodeDirs:
    """An OVS VM (or KVM host): OVS and ovn-controller, running but unconfigured.

    Its transport NIC sits in the underlay, its management NIC in the
    management network; the trunk vNIC(s) are wired by the agent from vCenter.
    """
    ns = layout.ns(node)
    make_ns(state, ns)
    index = layout.node_index(node)
    mtu = layout.topology.underlay_mtu
    _fabric_link(layout, ns, TRANSPORT_IF, UNDERLAY_BR, f"u{index}", mtu=mtu)
    _fabric_link(layout, ns, MGMT_IF, MGMT_BR, f"m{index}")
    netlink.add_address(ns, MGMT_IF, f"{layout.mgmt_ip(node)}/{layout.mgmt_prefix}")
    dirs = NodeDirs(state.node_dir(node))
    start_ovs(
        node, dirs, state=state, netns=ns, remotes=[f"ptcp:{OVSDB_PORT}:{layout.mgmt_ip(node)}"]
    )
    # The tunnel endpoint: userspace tunnels need the IP on an OVS bridge.
    vsctl(
        dirs,
        "--may-exist",
        "add-br",
        "br-phy",
        "--",
        "set",
        "bridge",
        "br-phy",
        "datapath_type=netdev",
        "--",
        "--may-exist",
        "add-port",
        "br-phy",
        TRANSPORT_IF,
    )
    netlink.set_up(ns, "br-phy", mtu=mtu)
    netlink.add_address(ns, "br-phy", f"{layout.underlay_ip(node)}/{layout.underlay_prefix}")
    spawn(
        node,
        "ovn-controller",
        # ovn-controller names its control socket ovn-controller.<pid>.ctl in OVN_RUNDIR.
        [f"unix:{dirs.run / 'db.sock'}"],
        dirs=dirs,
        state=state,
        netns=ns,
    )
    if kvm:
        configure_chassis(layout, dirs, node, encap="geneve")
    return dirs


def configure_chassis(layout: Layout, dirs: NodeDirs, node: str, *, encap: str) -> None:
    """ovn-controller's settings: the lab's tests (and later the manager) call this."""
    vsctl(
        dirs,
        "set",
        "open_vswitch",
        ".",
        f"external_ids:system-id={node}",
        f'external_ids:ovn-remote="{layout.sb_remote()}"',
        f"external_ids:ovn-encap-type={encap}",
        f"external_ids:ovn-encap-ip={layout.underlay_ip(node)}",
        "external_ids:ovn-bridge-datapath-type=netdev",
    )


def vm_namespace(layout: Layout, state: LabState, vm: str) -> None:
    """A VM: an empty namespace; its NICs are wired by the agent from vCenter."""
    make_ns(state, layout.ns(vm))


def kvm_vm(layout: Layout, state: LabState, kvm: str, vm: str, mac: str) -> None:
    """A KVM guest: a namespace with eth0 plugged straight into the host's br-int."""
    ns = layout.ns(vm)
    make_ns(state, ns)
    tap = f"tap{layout.kvm_vm_names.index(vm)}"
    netlink.veth(ns, "eth0", layout.ns(kvm), tap, mac_a=mac)
    dirs = NodeDirs(state.node_dir(kvm))
    vsctl(
        dirs,
        "--may-exist",
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=netdev",
        "fail-mode=secure",
        "--",
        "--may-exist",
        "add-port",
        "br-int",
        tap,
        "--",
        "set",
        "interface",
        tap,
        f"external_ids:attached-mac={mac}",
        f"external_ids:vm-id={vm}",
    )
