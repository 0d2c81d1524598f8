"""Two vDS under one manager (``examples/two-vds.yaml``): VLANs are allocated per vDS,
each OVS VM has a trunk bridge per vDS, and networks span both."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovsphere.lab.manager import lab_settings
from ovsphere.manager import operations
from ovsphere.manager.desired import BOUND
from ovsphere.ovn.connection import NbClient
from ovsphere.ovn.ports import read_ports
from ovsphere.testing.lab import lab_from, unique_name, wait_for_ping
from ovsphere.vsphere.connection import Connection

pytestmark = pytest.mark.lab

TOPOLOGY = Path(__file__).parents[2] / "examples" / "two-vds.yaml"


@pytest.fixture(scope="module")
def two_vds():
    yield from lab_from(TOPOLOGY, unique_name("v"), manager=True)


def test_vlans_are_per_vds_and_networks_span_both(two_vds):
    settings = lab_settings(two_vds.state)
    with (
        Connection(two_vds.connection().endpoint, verify_tls=False) as vc,
        NbClient(settings.require_nb()) as nb,
    ):
        operations.create_network(nb, "x", cidr="10.61.0.0/24")
        operations.create_network(nb, "y", cidr="10.62.0.0/24")
        ab = next(v for v in two_vds.inventory().vms if v.name == "ab")
        nic_a, nic_b = (str(n.key) for n in ab.nics)
        operations.attach(vc, nb, settings, "a1", "x")  # dvs-a, esx1
        operations.attach(vc, nb, settings, "b2", "x")  # dvs-b, esx2
        operations.attach(vc, nb, settings, "ab", "x", nic=nic_a)  # dvs-a, esx1
        operations.attach(vc, nb, settings, "ab", "y", nic=nic_b)  # dvs-b, esx1

        def bound() -> tuple[bool, str]:
            rows = operations.status(vc, nb, settings)
            return all(r.state == BOUND for r in rows), str([(r.vm, r.state) for r in rows])

        operations.wait_for(bound, timeout=60)
        ports = read_ports(nb)
        by_vds: dict[str, list[int]] = {}
        for p in ports:
            by_vds.setdefault(p.vds, []).append(p.vlan)
        # Unique within a vDS; the same numbers again on the other one.
        assert sorted(len(set(v)) for v in by_vds.values()) == [2, 2]
        assert set(by_vds[ports[0].vds]) == set(next(v for k, v in by_vds.items()
                                                      if k != ports[0].vds))
    two_vds.dhcp("a1")
    b2 = two_vds.dhcp("b2")
    ab_x, ab_y = two_vds.dhcp("ab", "eth0"), two_vds.dhcp("ab", "eth1")
    assert ab_x.startswith("10.61.") and ab_y.startswith("10.62.")
    wait_for_ping(two_vds, "a1", b2)  # across hosts and across vDS, on one network
    wait_for_ping(two_vds, "b2", ab_x)
    assert two_vds.ping("a1", ab_y, count=2, wait=0.5) == 0  # y is another network
