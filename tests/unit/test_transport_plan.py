"""The transport-node planner and the MTU check: pure, table-driven, no OVS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ovsphere.transport.errors import TransportError, TrunkNicMissing
from ovsphere.transport.model import (
    GENEVE_OVERHEAD,
    OWNER,
    OWNER_KEY,
    VDS_KEY,
    VLAN_KEY,
    VXLAN_OVERHEAD,
    Chassis,
    NodeDesired,
    NodeObserved,
    ObservedBridge,
    ObservedPort,
    Patch,
    Trunk,
    patch_names,
)
from ovsphere.transport.mtu import check_mtu
from ovsphere.transport.plan import observe, plan_node, plan_steps

pytestmark = pytest.mark.unit

VDS = "vds-a"
VDS_B = "vds-b"
MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
CHASSIS = Chassis("ovs-esx1", "tcp:192.0.2.1:6642", "geneve", "198.51.100.11")
P101 = Patch(VDS, 101, "vm1-0", "00:50:56:00:01:01", "uuid-vm1")
P102 = Patch(VDS, 102, "vm2-0", "00:50:56:00:01:02", "uuid-vm2")
OWN = {OWNER_KEY: OWNER}


def want(*patches: Patch, trunks: tuple[Trunk, ...] = (Trunk(VDS, MAC1),)) -> NodeDesired:
    return NodeDesired(CHASSIS, trunks, patches)


def bridge(name: str, owned: bool = True, vds: str | None = None, fail_mode: str = "") -> (
    ObservedBridge
):
    return ObservedBridge(name, owned, "netdev", fail_mode, vds)


def pair(index: int, p: Patch, trunk_bridge: str) -> list[ObservedPort]:
    outer, inner = patch_names(index, p.vlan)
    ids = {**OWN, VDS_KEY: p.vds_uuid, VLAN_KEY: str(p.vlan)}
    binding = {"iface-id": p.iface_id, "attached-mac": p.mac, "vm-uuid": p.vm_uuid}
    return [
        ObservedPort(outer, trunk_bridge, True, "patch", p.vlan, inner, ids),
        ObservedPort(inner, "br-int", True, "patch", None, outer, {**ids, **binding}),
    ]


def node(
    *patches: Patch,
    extra_bridges: tuple[ObservedBridge, ...] = (),
    extra_ports: tuple[ObservedPort, ...] = (),
    keys: dict[str, str] | None = None,
) -> NodeObserved:
    """A node as apply_node leaves it for ``want(*patches)`` (plus extras)."""
    ports = [ObservedPort("eth1", "br-trunk1", True)]
    for p in patches:
        ports += pair(1, p, "br-trunk1")
    return observe(
        bridges=(
            bridge("br-int", fail_mode="secure"),
            bridge("br-trunk1", vds=VDS),
            *extra_bridges,
        ),
        ports=(*ports, *extra_ports),
        chassis_keys=CHASSIS.keys() if keys is None else keys,
        nics={MAC1: "eth1", MAC2: "eth2"},
        mtu={},
    )


EMPTY = observe(bridges=(), ports=(), chassis_keys={}, nics={MAC1: "eth1"}, mtu={})


def kinds(observed: NodeObserved, desired: NodeDesired) -> list[str]:
    return [a.kind for a in plan_node(observed, desired)]


def test_an_empty_node_is_built_in_order() -> None:
    actions = plan_node(EMPTY, want(P101))
    assert [a.kind for a in actions] == [
        "add-bridge",
        "add-bridge",
        "add-trunk-nic",
        "add-patch",
        "set-chassis",
    ]
    assert "vlan 101 -> lp vm1-0 on vds vds-a" in actions[3].detail
    assert "pt1-101 on br-trunk1" in actions[3].detail


def test_a_node_that_fits_needs_nothing() -> None:
    observed = node(P101, P102)
    assert observed.patches == (P101, P102)
    assert observed.trunks == {VDS: "br-trunk1"}
    assert observed.chassis == CHASSIS
    assert plan_node(observed, want(P101, P102)) == []


def test_macs_compare_in_any_case() -> None:
    upper = replace(P101, mac=P101.mac.upper())
    assert plan_node(node(P101), want(upper, trunks=(Trunk(VDS, MAC1.upper()),))) == []


@pytest.mark.parametrize(
    ("observed", "desired", "expected"),
    [
        (node(P101, P102), want(P101), ["del-patch"]),
        (node(P101), want(P101, P102), ["add-patch"]),
        (node(P101), want(replace(P101, iface_id="vm9-0")), ["update-patch"]),
        (node(P101), want(), ["del-patch"]),
        (node(P101), want(P101, trunks=(Trunk(VDS, MAC1), Trunk(VDS_B, MAC2))),
         ["add-bridge", "add-trunk-nic"]),
        # A vDS that goes takes its bridge; the br-int sides of its pairs go as ports.
        (node(P101), NodeDesired(CHASSIS, (), ()), ["del-port", "del-bridge"]),
    ],
)
def test_changes(observed: NodeObserved, desired: NodeDesired, expected: list[str]) -> None:
    assert kinds(observed, desired) == expected


def test_a_broken_pair_is_removed_and_remade() -> None:
    outer, inner = pair(1, P101, "br-trunk1")
    for broken in (
        [replace(outer, tag=999), inner],
        [outer],
        [replace(outer, peer="elsewhere"), inner],
        [outer, replace(inner, external_ids={**inner.external_ids, "iface-id": ""})],
    ):
        observed = node(extra_ports=tuple(broken))
        assert observed.patches == ()
        assert kinds(observed, want(P101)) == ["del-port"] * len(broken) + ["add-patch"]


def test_strangers_are_never_planned_for() -> None:
    stranger_bridge = bridge("br-phy", owned=False)
    strangers = (
        ObservedPort("tap-other", "br-int", False, "internal"),
        ObservedPort("eth3", "br-phy", False),
        ObservedPort("pt1-999", "br-trunk1", False, "patch", 999),
    )
    observed = node(P101, extra_bridges=(stranger_bridge,), extra_ports=strangers)
    assert plan_node(observed, want(P101)) == []
    teardown = plan_node(observed, NodeDesired(CHASSIS, (), ()))
    assert teardown  # br-trunk1 and pi1-101 go ...
    for a in teardown:  # ... and nothing of theirs
        assert not any(name in a.detail for name in ("tap-other", "eth3", "br-phy", "pt1-999"))


def test_br_int_of_someone_else_is_used_as_it_is() -> None:
    observed = observe(
        bridges=(bridge("br-int", owned=False, fail_mode="standalone"),),
        ports=(),
        chassis_keys=CHASSIS.keys(),
        nics={MAC1: "eth1"},
        mtu={},
    )
    assert kinds(observed, want(P101)) == ["add-bridge", "add-trunk-nic", "add-patch"]


def test_owned_br_int_with_wrong_settings_is_repaired_and_never_removed() -> None:
    observed = node(extra_bridges=())
    broken = replace(observed, bridges=(bridge("br-int", fail_mode=""), *observed.bridges[1:]))
    assert kinds(broken, want()) == ["fix-bridge"]
    teardown = plan_node(observed, NodeDesired(CHASSIS, (), ()))
    assert [a.detail.split()[0] for a in teardown if a.kind == "del-bridge"] == ["br-trunk1"]


def test_a_new_trunk_bridge_takes_a_free_name() -> None:
    observed = observe(
        bridges=(bridge("br-trunk1", owned=False),),
        ports=(),
        chassis_keys=CHASSIS.keys(),
        nics={MAC1: "eth1"},
        mtu={},
    )
    steps = plan_steps(observed, want(P101))
    assert "br-trunk2" in plan_node(observed, want(P101))[1].detail
    assert any("pt2-101" in s.action().detail for s in steps)


def test_a_leftover_probe_bridge_is_removed() -> None:
    observed = node(extra_bridges=(bridge("br-ovsphere-probe"),))
    assert kinds(observed, want()) == ["del-bridge"]


def test_trunk_nic_moves_off_another_owned_bridge() -> None:
    observed = observe(
        bridges=(bridge("br-int", fail_mode="secure"), bridge("br-trunk1", vds=VDS_B)),
        ports=(ObservedPort("eth1", "br-trunk1", True),),
        chassis_keys=CHASSIS.keys(),
        nics={MAC1: "eth1"},
        mtu={},
    )
    # vds-b's bridge goes (with eth1 on it); vds-a gets a new bridge with eth1.
    assert kinds(observed, want()) == ["del-bridge", "add-bridge", "add-trunk-nic"]


@pytest.mark.parametrize(
    ("observed", "desired", "error", "words"),
    [
        (EMPTY, want(trunks=(Trunk(VDS, "02:00:00:00:00:99"),)), TrunkNicMissing,
         "02:00:00:00:00:99"),
        (EMPTY, want(replace(P101, vds_uuid="vds-z")), TransportError, "no trunk vNIC"),
        (EMPTY, want(P101, replace(P102, vlan=101)), TransportError, "VLAN 101"),
        (EMPTY, want(trunks=(Trunk(VDS, MAC1), Trunk(VDS, MAC2))), TransportError, "two trunk"),
        (EMPTY, want(trunks=(Trunk(VDS, MAC1), Trunk(VDS_B, MAC1))), TransportError, MAC1),
        (
            observe(bridges=(bridge("br-x", owned=False),),
                    ports=(ObservedPort("eth1", "br-x", False),),
                    chassis_keys={}, nics={MAC1: "eth1"}, mtu={}),
            want(), TransportError, "ovs-vsctl del-port br-x eth1",
        ),
        (
            observe(bridges=(bridge("br-int", owned=False),),
                    ports=(ObservedPort("pi1-101", "br-int", False, "internal"),),
                    chassis_keys={}, nics={MAC1: "eth1"}, mtu={}),
            want(P101), TransportError, "pi1-101",
        ),
    ],
)
def test_impossible_wishes_are_errors_that_say_what_to_do(
    observed: NodeObserved, desired: NodeDesired, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        plan_node(observed, desired)


@pytest.mark.parametrize(
    ("have", "expected"),
    [
        ({}, "system-id=ovs-esx1, ovn-remote=tcp:192.0.2.1:6642"),
        ({**CHASSIS.keys(), "ovn-encap-ip": "198.51.100.99"}, "ovn-encap-ip=198.51.100.11"),
        ({**CHASSIS.keys(), "ovn-bridge-datapath-type": "system"},
         "ovn-bridge-datapath-type=netdev"),
        ({**CHASSIS.keys(), "ovn-bridge-mappings": "physnet1:br-phy"}, "-ovn-bridge-mappings"),
    ],
)
def test_chassis_keys(have: dict[str, str], expected: str) -> None:
    (action,) = plan_node(node(P101, keys=have), want(P101))
    assert action.kind == "set-chassis" and expected in action.detail


def test_bridge_mappings_in_another_order_are_the_same() -> None:
    mapped = replace(CHASSIS, bridge_mappings=(("a", "br-a"), ("b", "br-b")))
    keys = {**mapped.keys(), "ovn-bridge-mappings": "b:br-b,a:br-a"}
    observed = node(P101, keys=keys)
    assert observed.chassis is not None
    assert set(observed.chassis.bridge_mappings) == {("a", "br-a"), ("b", "br-b")}
    assert plan_node(observed, replace(want(P101), chassis=mapped)) == []


def mtu_node(mtu: dict[str, int]) -> NodeObserved:
    return observe(bridges=(), ports=(), chassis_keys={}, nics={}, mtu=mtu)


@pytest.mark.parametrize(
    ("mtu", "overhead", "guest", "needed"),
    [
        (1500, GENEVE_OVERHEAD, 1500, 1558),
        (1500, VXLAN_OVERHEAD, 1500, 1550),
        (1557, GENEVE_OVERHEAD, 1500, 1558),
        (1600, GENEVE_OVERHEAD, 1500, None),
        (1500, GENEVE_OVERHEAD, 1442, None),
        (9000, GENEVE_OVERHEAD, 9000, 9058),
    ],
)
def test_mtu(mtu: int, overhead: int, guest: int, needed: int | None) -> None:
    problems = check_mtu(mtu_node({"eth1": mtu}), "eth1", overhead, guest)
    if needed is None:
        assert problems == []
    else:
        (p,) = problems
        assert (p.interface, p.mtu, p.needed) == ("eth1", mtu, needed)
        assert f"needs {needed}" in p.message and f"MTU {mtu} on eth1" in p.message
        assert f"raise it to {max(1600, needed)}" in p.message


def test_mtu_message_is_the_one_operators_read() -> None:
    (p,) = check_mtu(mtu_node({"eth1": 1500}), "eth1", GENEVE_OVERHEAD)
    assert p.message == (
        "transport MTU 1500 on eth1 is too small for 1500-byte guest frames through Geneve "
        "(needs 1558): raise it to 1600"
    )


def test_mtu_of_an_unknown_interface_is_a_problem() -> None:
    (p,) = check_mtu(mtu_node({"br-phy": 1600}), "eth1", GENEVE_OVERHEAD)
    assert p.mtu == 0 and "eth1" in p.message and "br-phy" in p.message
