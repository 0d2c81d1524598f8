"""One OVSDB connection to one OVS VM (transport node), through ovsdbapp.

ovsphere configures OVS VMs agentlessly, as NVP managed its hypervisors: over
OVSDB (``unix:/path`` in the lab, ``tcp:IP:6640`` or ``ssl:IP:6640`` for a real
OVS VM).  A :class:`NodeConnection` holds ovsdbapp's Open_vSwitch backend: an
IDL (a local replica of the node's database, kept current by ovsdbapp's own
thread) and a transaction queue.  :meth:`NodeConnection.read` runs a function
over the replica under the connection's lock, :meth:`NodeConnection.transact`
runs one function inside one OVSDB transaction (errors always checked), and
:meth:`NodeConnection.sync` makes the replica include everything committed
before the call.  The modules above (:mod:`.node`, :mod:`.discover`) work with
these three; no IDL row leaves this package.

Concurrency: one connection may be shared by threads (ovsdbapp serialises
transactions through one queue; reads take the IDL lock), and the manager keeps
one per node, so connections to many nodes coexist in one process.  Two
ovsdbapp pitfalls are handled here: its backend keeps the connection in a
*class* attribute (a second node would silently talk to the first), so each
connection gets a class of its own; and its schema fetch blocks without a time
limit, so the schema is fetched here with one.  TLS settings of the ``ovs``
library are process-wide: every ``ssl:`` remote of a process must use the same
key, certificate and CA, and :class:`NodeConnection` refuses a different set.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ovs import jsonrpc, poller, stream
from ovs import util as ovs_util
from ovsdbapp import exceptions as ovsdbapp_exceptions
from ovsdbapp.backend.ovs_idl import command, connection, idlutils, transaction
from ovsdbapp.schema.open_vswitch import impl_idl

from ovsphere.errors import ConfigError, ConflictError, OvsphereError
from ovsphere.transport.errors import TransportError, TransportUnreachable

SCHEMA = "Open_vSwitch"
#: The columns ovsphere reads or writes, and no more: ovs-vswitchd rewrites every
#: Interface's statistics every few seconds, and a node with thousands of ports would
#: otherwise keep each connection's thread busy parsing updates nobody reads.
COLUMNS = {
    "Open_vSwitch": ["bridges", "external_ids", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "fail_mode", "external_ids", "other_config"],
    "Port": ["name", "interfaces", "tag", "external_ids"],
    "Interface": [
        "name",
        "type",
        "options",
        "external_ids",
        "mac_in_use",
        "mtu",
        "error",
        "ofport",
    ],
}
T = TypeVar("T")

#: What an OVSDB server says when a transaction breaks a uniqueness or reference rule:
#: someone else changed the node between our read and our write.
_CONFLICTS = ("constraint violation", "referential integrity violation")

_tls_lock = threading.Lock()


class NodeConnection:
    """An open OVSDB session to one transport node; close it (or use ``with``)."""

    def __init__(
        self,
        remote: str,
        *,
        private_key: Path | None = None,
        certificate: Path | None = None,
        ca_cert: Path | None = None,
        timeout: float = 10,
    ) -> None:
        self.remote = remote
        self.timeout = timeout
        _check_remote(remote)
        if any(part.strip().startswith("ssl:") for part in remote.split(",")):
            _use_tls(remote, private_key, certificate, ca_cert)
        helper = idlutils.create_schema_helper(_fetch_schema(remote, timeout))
        for table, columns in COLUMNS.items():
            helper.register_columns(table, columns)
        idl = connection.OvsdbIdl(remote, helper)
        self._connection = connection.Connection(idl, timeout=timeout)
        # ovsdbapp's Backend keeps its connection in a class attribute (one per process,
        # as Neutron uses it): a class of our own per node lets many nodes coexist.
        api_class = type("NodeOvsdbApi", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
        self.api: Any = api_class(self._connection, start=False)
        try:
            self._connection.start()
        except ovsdbapp_exceptions.TimeoutException as exc:
            idl.close()
            raise _unreachable(remote, f"no database dump within {timeout:g} s") from exc

    # --- the three operations the layer above uses -------------------------------------------

    def read(self, fn: Callable[[Any], T]) -> T:
        """``fn(tables)`` over the local replica, under the IDL lock (no I/O)."""
        with self._connection.lock:
            return fn(self.api.tables)

    def transact(
        self,
        fn: Callable[[Any, Any], None],
        *,
        wait_for_vswitchd: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Run ``fn(idl_txn, tables)`` in one OVSDB transaction and commit it.

        ``fn`` may run more than once (ovsdbapp re-runs it when the server says
        "try again"), each time against the current replica; it raises an
        :class:`OvsphereError` to abort.  With ``wait_for_vswitchd`` the call
        returns once ovs-vswitchd has applied the change (``cur_cfg``), like
        ``ovs-vsctl`` without ``--no-wait``.  ``timeout`` (default: the
        connection's) bounds the whole call; a big transaction deserves more.
        """
        txn_class = impl_idl.OvsVsctlTransaction if wait_for_vswitchd else transaction.Transaction
        limit = self.timeout if timeout is None else timeout
        txn = txn_class(
            self.api, self._connection, timeout=limit, check_error=True, log_errors=False
        )
        txn.add(_FunctionCommand(self.api, fn))
        self._commit(
            txn, "ovsdb-server or ovs-vswitchd" if wait_for_vswitchd else "ovsdb-server", limit
        )

    def sync(self) -> None:
        """Return once the replica holds every change committed before this call.

        A read-only ``select`` round trip: ovsdb-server sends a client its
        pending monitor updates before it reads the client's next request.
        """

        def select(txn: Any, tables: Any) -> None:
            txn.add_op({"op": "select", "table": SCHEMA, "where": [], "columns": ["_uuid"]})

        self.transact(select, wait_for_vswitchd=False)

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.stop(timeout=self.timeout)

    def __enter__(self) -> NodeConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NodeConnection({self.remote!r})"

    def _commit(self, txn: Any, daemons: str, timeout: float) -> None:
        try:
            txn.commit()
        except OvsphereError:
            raise
        except ovsdbapp_exceptions.TimeoutException as exc:
            raise _unreachable(
                self.remote,
                f"{daemons} did not confirm a transaction within {timeout:g} s (it may "
                "still be applied; the next pass re-reads the node)",
            ) from exc
        except RuntimeError as exc:  # ovsdbapp's "OVSDB Error: ..." for a failed transaction
            text = str(exc)
            if "timed out" in text:
                raise _unreachable(self.remote, text) from exc
            if any(c in text for c in _CONFLICTS):
                raise ConflictError(
                    f"OVS VM {self.remote} changed while ovsphere wrote to it: {text}",
                    fix="the next pass re-reads the node and plans again",
                ) from exc
            raise TransportError(
                f"OVS VM {self.remote} refused a transaction: {text}",
                fix="read the ovsdb-server log of that OVS VM",
            ) from exc


class _FunctionCommand(command.BaseCommand):  # type: ignore[misc]
    """An ovsdbapp command that runs a function on the IDL transaction."""

    def __init__(self, api: Any, fn: Callable[[Any, Any], None]) -> None:
        super().__init__(api)
        self.fn = fn

    def run_idl(self, txn: Any) -> None:
        self.fn(txn, self.api.tables)


def _check_remote(remote: str) -> None:
    for part in remote.split(","):
        part = part.strip()
        kind, _, rest = part.partition(":")
        if kind not in ("unix", "tcp", "ssl") or not rest:
            raise ConfigError(
                f"OVSDB remote {part!r} is not unix:PATH, tcp:IP:PORT or ssl:IP:PORT",
                fix="name the OVS VM's OVSDB as e.g. tcp:192.0.2.10:6640",
            )


def _use_tls(
    remote: str, private_key: Path | None, certificate: Path | None, ca_cert: Path | None
) -> None:
    files = {"private key": private_key, "certificate": certificate, "CA certificate": ca_cert}
    for what, path in files.items():
        if path is None:
            raise ConfigError(
                f"{remote} is an ssl: remote but no {what} was given",
                fix="pass the private key, certificate and CA certificate for OVSDB over TLS",
            )
        if not path.is_file():
            raise ConfigError(f"{what} {path} for {remote} does not exist", fix="check the path")
    wanted = (str(private_key), str(certificate), str(ca_cert))
    with _tls_lock:
        # The ovs library reads these at every TLS connect, for every remote of the process.
        current = (
            stream.Stream._SSL_private_key_file,
            stream.Stream._SSL_certificate_file,
            stream.Stream._SSL_ca_cert_file,
        )
        if any(current) and current != wanted:
            raise ConfigError(
                f"{remote} asks for TLS files {', '.join(wanted)} but this process already "
                f"uses {', '.join(str(c) for c in current)}",
                fix="the ovs library keeps one TLS key/certificate/CA per process: use the "
                "same files for every ssl: remote",
            )
        stream.Stream.ssl_set_private_key_file(wanted[0])
        stream.Stream.ssl_set_certificate_file(wanted[1])
        stream.Stream.ssl_set_ca_cert_file(wanted[2])


def _fetch_schema(remote: str, timeout: float) -> Any:
    """The server's Open_vSwitch schema (JSON), trying each remote, within ``timeout``.

    Replaces ``idlutils.get_schema_helper``, which waits forever for a remote that
    accepts a TCP connection (or a TLS handshake) and never answers.
    """
    deadline = time.monotonic() + timeout
    problems = []
    parts = [p.strip() for p in remote.split(",")]
    for part in parts:
        label = f"{part}: " if len(parts) > 1 else ""
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        error, strm = stream.Stream.open_block(stream.Stream.open(part), left_ms)
        if error:
            problems.append(f"{label}{_strerror(error)}")
            continue
        rpc = jsonrpc.Connection(strm)
        try:
            reply, error = _get_schema(rpc, deadline)
        finally:
            rpc.close()
        if error:
            problems.append(f"{label}{_strerror(error)}")
        elif reply is not None and reply.error:
            problems.append(f"{label}{reply.error}")
        elif reply is not None:
            return reply.result
    raise _unreachable(remote, "; ".join(problems))


def _get_schema(rpc: Any, deadline: float) -> tuple[Any, int]:
    """(reply, 0) or (None, errno) for one ``get_schema`` request on an open connection."""
    request = jsonrpc.Message.create_request("get_schema", [SCHEMA])
    error = rpc.send(request)
    while not error:
        rpc.run()
        error, msg = rpc.recv()
        if error == errno.EAGAIN:
            if time.monotonic() >= deadline:
                return None, errno.ETIMEDOUT
            wait = poller.Poller()
            rpc.wait(wait)
            rpc.recv_wait(wait)
            wait.timer_wait(max(1, int((deadline - time.monotonic()) * 1000)))
            wait.block()
            error = 0
        elif not error and msg.id == request.id:
            return msg, 0
    return None, error


def _strerror(error: int) -> str:
    return "connection closed by the server" if error == ovs_util.EOF else os.strerror(error)


def _unreachable(remote: str, why: str) -> TransportUnreachable:
    return TransportUnreachable(
        f"cannot reach the OVSDB of OVS VM {remote}: {why}",
        fix="check that ovsdb-server runs in the OVS VM and listens there "
        "(ovs-vsctl set-manager ptcp:6640 / pssl:6640), and that the address, port and "
        "TLS files are right",
    )
