"""A connection to the OVN northbound database through ovsdbapp.

One :class:`NbClient` holds one IDL (a local replica of the NB, kept current
by its own thread) and serialises transactions through ovsdbapp.  With
``lock=...`` the IDL asks ovsdb-server for a named lock: only the holder can
commit, which is how several managers run with one active (the others'
transactions fail with NOT_LOCKED until they get the lock).  Remotes:
``unix:/path``, ``tcp:IP:PORT``, ``ssl:IP:PORT`` or a comma-separated list of
them (a Raft cluster; the client follows the leader).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ovs import stream
from ovsdbapp import exceptions
from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_northbound.impl_idl import OvnNbApiIdlImpl

from ovsphere.errors import ConflictError, OvsphereError


class OvnError(OvsphereError):
    """The NB refused or could not be reached."""


class OvnUnreachable(OvnError):
    temporary = True


class NotActive(OvnError):
    """This manager does not hold the NB lock: its writes are refused."""

    temporary = True


@dataclass(frozen=True)
class TlsFiles:
    private_key: Path
    certificate: Path
    ca_cert: Path


def use_tls(files: TlsFiles) -> None:
    # The ovs library keeps TLS settings process-wide.
    stream.Stream.ssl_set_private_key_file(str(files.private_key))
    stream.Stream.ssl_set_certificate_file(str(files.certificate))
    stream.Stream.ssl_set_ca_cert_file(str(files.ca_cert))


def schema_helper(remote: str, schema: str, *, fix: str) -> Any:
    """The schema of ``schema`` at ``remote``, or OvnUnreachable naming the remote."""
    try:
        return idlutils.get_schema_helper(remote, schema)
    except Exception as exc:  # ovsdbapp raises a bare Exception when no remote answers
        raise OvnUnreachable(f"cannot reach {schema} at {remote}: {exc}", fix=fix) from exc


class NbClient:
    def __init__(
        self,
        remote: str,
        *,
        tls: TlsFiles | None = None,
        timeout: float = 30,
        lock: str | None = None,
    ) -> None:
        self.remote = remote
        if tls is not None:
            use_tls(tls)
        helper = schema_helper(
            remote,
            "OVN_Northbound",
            fix="check that ovsdb-server runs and the NB connection string (--nb / "
            "OVSPHERE_NB) is right",
        )
        helper.register_all()
        idl = connection.OvsdbIdl(remote, helper, leader_only=True)
        if lock is not None:
            idl.set_lock(lock)
        self.idl = idl
        self.connection = connection.Connection(idl, timeout=timeout)
        # ovsdbapp keeps the connection in a class attribute (one per process, as
        # Neutron wants it); a class of our own per client lets several coexist.
        api_class = type("NbApi", (OvnNbApiIdlImpl,), {"_ovsdb_connection": None})
        self.api = api_class(self.connection)

    @contextmanager
    def transaction(self, action: str) -> Iterator[Any]:
        """An ovsdbapp transaction whose failures become ovsphere errors naming ``action``."""
        try:
            with self.api.transaction(check_error=True) as txn:
                yield txn
        except OvsphereError:
            raise
        except exceptions.TimeoutException as exc:
            raise OvnUnreachable(
                f"{action}: the OVN NB did not answer in time",
                fix=f"check ovsdb-server at {self.remote}",
            ) from exc
        except RuntimeError as exc:  # ovsdbapp's commands and commit report errors so
            message = str(exc)
            if "NOT_LOCKED" in message or "database lock" in message:
                raise NotActive(
                    f"{action}: another manager holds the NB lock",
                    fix="this manager stands by until the active one stops",
                ) from exc
            if "exists" in message:
                raise ConflictError(
                    f"{action}: {message}", fix="another writer got there first; re-read"
                ) from exc
            raise OvnError(f"{action}: {message}") from exc

    @property
    def has_lock(self) -> bool:
        return bool(self.idl.has_lock)

    def close(self) -> None:
        self.connection.stop()

    def __enter__(self) -> NbClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
