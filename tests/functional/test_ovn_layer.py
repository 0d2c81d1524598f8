"""Networks, ports and the VLAN ledger against a real OVN NB (and northd)."""

from __future__ import annotations

import subprocess
import time

import pytest

from ovsphere.errors import ConflictError, NotFoundError, PreconditionError
from ovsphere.logic.vlan import Owner
from ovsphere.model import LogicalPort, Network
from ovsphere.ovn.connection import NbClient, OvnUnreachable
from ovsphere.ovn.networks import create_network, delete_network, read_networks
from ovsphere.ovn.ports import generation, ledger, port_name, read_ports, set_chassis, write_ports

pytestmark = pytest.mark.functional
VDS = "50 2a 11 22"


@pytest.fixture
def nb(ovn_central):
    with NbClient(ovn_central.nb_unix) as client:
        yield client


def nbctl(central, *args):
    return subprocess.run(["ovn-nbctl", f"--db={central.nb_unix}", *args], capture_output=True,
                          text=True, check=True).stdout


def wait_until(condition, timeout=10.0):
    """Our IDL replica catches up with a write made by another client."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the NB replica did not catch up"
        time.sleep(0.01)


def lport(vm, nic, vlan, network="web", ip=None):
    return LogicalPort(name=port_name(vm, nic), network=network, mac=f"00:50:56:00:00:{vlan:02x}",
                       vds=VDS, vlan=vlan, vm=vm, nic=nic, vm_name=f"name-{vm}", ip=ip,
                       requested_chassis=("ovs-esx1",))


def test_networks_are_created_listed_and_deleted(nb, ovn_central):
    web = create_network(nb, Network("web", cidr="10.0.0.0/24", vni=5001))
    assert (web.cidr, web.vni, web.transport) == ("10.0.0.0/24", 5001, "geneve") and web.dhcp
    assert create_network(nb, Network("web", cidr="10.0.0.0/24", vni=5001)) == web  # idempotent
    with pytest.raises(ConflictError, match="other settings"):
        create_network(nb, Network("web", cidr="10.9.0.0/24"))
    create_network(nb, Network("phys", transport="vlan:physnet1:300"))
    assert [n.name for n in read_networks(nb)] == ["phys", "web"]
    options = nbctl(ovn_central, "dhcp-options-get-options", web.dhcp)
    assert "mtu=1500" in options and "server_id=10.0.0.1" in options
    localnet = nbctl(ovn_central, "--columns=type,tag,options", "list", "logical_switch_port")
    assert "localnet" in localnet and "300" in localnet and "physnet1" in localnet
    delete_network(nb, "phys")
    assert [n.name for n in read_networks(nb)] == ["web"]


def test_foreign_switches_are_never_adopted_or_deleted(nb, ovn_central):
    nbctl(ovn_central, "ls-add", "neutron-net")
    wait_until(lambda: any(r.name == "neutron-net"
                           for r in nb.api.tables["Logical_Switch"].rows.values()))
    with pytest.raises(ConflictError, match="does not own"):
        create_network(nb, Network("neutron-net"))
    with pytest.raises(NotFoundError):
        delete_network(nb, "neutron-net")
    assert read_networks(nb) == []
    assert "neutron-net" in nbctl(ovn_central, "ls-list")


def test_ports_hold_vlans_and_delete_refuses_while_attached(nb, ovn_central):
    create_network(nb, Network("web", cidr="10.0.0.0/24"))
    write_ports(nb, generations={VDS: 0}, add=[lport("a", 4000, 101),
                                               lport("b", 4000, 102, ip="10.0.0.20")],
                dhcp={"web": read_networks(nb)[0].dhcp})
    ports = read_ports(nb)
    assert ledger(ports, VDS) == {101: Owner("a", 4000), 102: Owner("b", 4000)}
    assert generation(nb, VDS) == 1
    b = next(p for p in ports if p.vm == "b")
    assert b.ip == "10.0.0.20" and b.requested_chassis == ("ovs-esx1",)
    dhcp = read_networks(nb)[0].dhcp
    for p in ports:  # OVN's DHCP answers only ports that reference the network's options
        got = nbctl(ovn_central, "get", "logical_switch_port", p.name, "dhcpv4_options")
        assert got.strip() == dhcp
    with pytest.raises(PreconditionError, match="2 ports"):
        delete_network(nb, "web")
    set_chassis(nb, b.name, ["ovs-esx1", "ovs-esx2"], activation="rarp")
    b = next(p for p in read_ports(nb) if p.vm == "b")
    assert b.requested_chassis == ("ovs-esx1", "ovs-esx2") and b.activation == "rarp"
    set_chassis(nb, b.name, ["ovs-esx2"])
    b = next(p for p in read_ports(nb) if p.vm == "b")
    assert b.requested_chassis == ("ovs-esx2",) and b.activation is None
    # --force marks the network: its ports' VLANs are released by the manager first.
    assert delete_network(nb, "web", force=True) == sorted(p.name for p in ports)
    assert next(n for n in read_networks(nb) if n.name == "web").deleting
    assert len(read_ports(nb)) == 2
    write_ports(nb, generations={VDS: generation(nb, VDS)}, delete=[p.name for p in ports])
    assert delete_network(nb, "web") == []
    assert read_ports(nb) == [] and "web" not in {n.name for n in read_networks(nb)}


def test_a_stale_ledger_generation_aborts_the_whole_transaction(ovn_central):
    with NbClient(ovn_central.nb_unix) as one, NbClient(ovn_central.nb_tcp) as two:
        create_network(one, Network("web"))
        seen = generation(two, VDS)
        write_ports(one, generations={VDS: generation(one, VDS)}, add=[lport("a", 4000, 101)])
        with pytest.raises(ConflictError, match="changed"):
            write_ports(two, generations={VDS: seen}, add=[lport("b", 4000, 101)])
        assert [p.vm for p in read_ports(one)] == ["a"]


def test_unreachable_nb_is_a_temporary_error(tmp_path):
    with pytest.raises(OvnUnreachable) as err:
        NbClient(f"unix:{tmp_path}/nothing.sock", timeout=2)
    assert err.value.temporary and "OVSPHERE_NB" in err.value.fix
