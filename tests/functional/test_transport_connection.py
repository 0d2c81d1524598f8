"""NodeConnection over unix, tcp and TLS; unreachable remotes fail fast and clearly."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ovsphere.errors import ConfigError
from ovsphere.testing.ovn import free_ports, make_pki
from ovsphere.transport import (
    Chassis,
    NodeConnection,
    NodeDesired,
    TransportUnreachable,
    apply_node,
    read_node,
)

if TYPE_CHECKING:  # imported by pytest as a plugin, below
    from ovsphere.testing.transport import OvsVm, TlsOvsdb

pytestmark = pytest.mark.functional
# Until tests/conftest.py lists it (then this line can go).
CHASSIS = Chassis("ovs-esx9", "ssl:192.0.2.1:6642", "vxlan", "198.51.100.19")


def test_tcp_remote_reads_and_applies(loopback_ovs: OvsVm) -> None:
    with NodeConnection(f"tcp:127.0.0.1:{loopback_ovs.tcp_port}") as conn:
        actions = apply_node(conn, NodeDesired(CHASSIS, (), ()))
        assert [a.kind for a in actions] == ["add-bridge", "set-chassis"]
        assert read_node(conn).chassis == CHASSIS
        assert apply_node(conn, NodeDesired(CHASSIS, (), ())) == []
    assert loopback_ovs.vsctl("list-br") == "br-int"


def test_two_nodes_in_one_process_stay_apart(loopback_ovs: OvsVm, ovs_vm: OvsVm) -> None:
    # ovsdbapp keeps its connection in a class attribute: each node must get its own.
    with (
        NodeConnection(f"tcp:127.0.0.1:{loopback_ovs.tcp_port}") as a,
        NodeConnection(ovs_vm.remote) as b,
    ):
        apply_node(a, NodeDesired(CHASSIS, (), ()))
        assert read_node(b).chassis is None
        assert read_node(a).chassis == CHASSIS
    assert ovs_vm.vsctl("list-br") == ""


def test_tls_remote_with_the_right_certificate(ssl_ovsdb: TlsOvsdb, clean_tls: None) -> None:
    c = ssl_ovsdb.client
    with NodeConnection(
        ssl_ovsdb.remote, private_key=c.private_key, certificate=c.certificate, ca_cert=c.ca_cert
    ) as conn:
        assert read_node(conn).bridges == ()
    # The ovs library keeps one set of TLS files per process: another set is refused.
    _, other = make_pki(ssl_ovsdb.tmp / "other-pki")
    with pytest.raises(ConfigError, match="one TLS key"):
        NodeConnection(ssl_ovsdb.remote, private_key=other.private_key,
                       certificate=other.certificate, ca_cert=other.ca_cert)


def test_tls_remote_refuses_a_stranger(ssl_ovsdb: TlsOvsdb, clean_tls: None) -> None:
    _, stranger = make_pki(ssl_ovsdb.tmp / "stranger-pki")  # signed by a CA the server ignores
    start = time.monotonic()
    with pytest.raises(TransportUnreachable, match=ssl_ovsdb.remote):
        NodeConnection(ssl_ovsdb.remote, private_key=stranger.private_key,
                       certificate=stranger.certificate, ca_cert=stranger.ca_cert, timeout=3)
    assert time.monotonic() - start < 3.5


def test_tls_remote_without_files_is_a_config_error(clean_tls: None) -> None:
    with pytest.raises(ConfigError, match="private key"):
        NodeConnection("ssl:127.0.0.1:6640")


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.parametrize("kind", ["closed-port", "no-socket", "silent"])
def test_unreachable_remote_is_a_quick_temporary_error(
    kind: str, silent_listener: int, tmp_path
) -> None:
    remote = {
        "closed-port": f"tcp:127.0.0.1:{free_ports(1)[0]}",
        "no-socket": f"unix:{tmp_path / 'nothing.sock'}",
        "silent": f"tcp:127.0.0.1:{silent_listener}",
    }[kind]
    start = time.monotonic()
    with pytest.raises(TransportUnreachable) as caught:
        NodeConnection(remote, timeout=1)
    assert time.monotonic() - start < 1.5
    assert caught.value.temporary
    assert remote in str(caught.value) and "ovsdb-server" in str(caught.value)


def test_a_malformed_remote_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tcp:IP:PORT"):
        NodeConnection("192.0.2.1:6640")
