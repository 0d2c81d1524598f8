"""A logged-in vCenter session that stays logged in.

vCenter drops idle sessions (30 minutes by default) and forgets every session
when it restarts.  :meth:`Connection.call` runs a function against the
ServiceInstance and, when vCenter answers ``NotAuthenticated``, logs in again
and runs it once more, so long-running users (the watch, the manager) survive
both.  TLS certificates are verified unless the operator opts out explicitly.

A Connection is not thread-safe (pyVmomi's stub is not): give each thread its
own.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from ovsphere.config import VCenterEndpoint
from ovsphere.vsphere.faults import translate, vcenter_errors

log = logging.getLogger(__name__)
T = TypeVar("T")


class Connection:
    def __init__(
        self, endpoint: VCenterEndpoint, *, verify_tls: bool = True, timeout: float = 60
    ) -> None:
        self.endpoint = endpoint
        self.verify_tls = verify_tls
        self.timeout = timeout
        self._si: Any = None
        self._content: Any = None

    @property
    def si(self) -> Any:
        """The ``vim.ServiceInstance``, logging in on first use."""
        if self._si is None:
            self.login()
        return self._si

    @property
    def content(self) -> Any:
        """The ServiceContent of the current session (fetched once per login)."""
        if self._content is None:
            self._content = self.si.RetrieveContent()
        return self._content

    def login(self) -> None:
        ep = self.endpoint
        # Always pass a context: pyVmomi skips verification for loopback
        # addresses when it has to choose one itself.
        context = (
            ssl.create_default_context() if self.verify_tls else ssl._create_unverified_context()
        )
        try:
            self._si = SmartConnect(
                host=ep.host,
                port=ep.port,
                path=ep.path,
                user=ep.user,
                pwd=ep.password.get_secret_value(),
                sslContext=context,
                disableSslCertValidation=not self.verify_tls,
                httpConnectionTimeout=self.timeout,
            )
        except Exception as exc:  # pyVmomi raises anything from socket to MethodFault
            raise translate(exc, f"log in to vCenter at {ep.url}") from exc
        log.info("logged in to vCenter", extra={"vcenter": ep.url, "user": ep.user})

    def relogin(self) -> None:
        """Log in again with a new session (after expiry or a vCenter restart)."""
        self._si = None
        self._content = None
        self.login()

    def call(self, action: str, fn: Callable[[Any], T]) -> T:
        """``fn(service_instance)``, re-logging in once if the session is gone.

        ``action`` names the operation for error messages ("read inventory").
        """
        with vcenter_errors(action):
            try:
                return fn(self.si)
            except vim.fault.NotAuthenticated:
                log.info("vCenter session expired; logging in again", extra={"action": action})
            except (ConnectionError, vmodl.fault.HostCommunication) as exc:
                log.info("vCenter connection lost; reconnecting", extra={"error": str(exc)})
            self.relogin()
            return fn(self.si)

    def close(self) -> None:
        if self._si is not None:
            try:
                Disconnect(self._si)
            except Exception as exc:  # logout of a dead session must not mask the real error
                log.debug("logout failed: %s", exc.__class__.__name__)
            self._si = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
