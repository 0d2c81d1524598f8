"""vCenter faults become ovsphere errors, here and nowhere else.

pyVmomi raises ``vim.fault.*`` / ``vmodl.fault.*`` method faults for what
vCenter refuses, and socket, TLS or HTTP errors for what never reached it.
:func:`translate` maps both onto :mod:`ovsphere.errors`, keeping vCenter's own
message and adding what to do; :func:`vcenter_errors` wraps a block of calls.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from pyVmomi import vim, vmodl

from ovsphere.errors import (
    ConflictError,
    NotFoundError,
    OvsphereError,
    VCenterAuthError,
    VCenterError,
    VCenterTemporaryError,
)

_TEMPORARY_FAULTS = (
    vim.fault.TaskInProgress,
    vim.fault.InvalidState,
    vmodl.fault.HostCommunication,
    vmodl.fault.SystemError,
    vim.fault.Timedout,
)


def fault_message(fault: BaseException) -> str:
    """vCenter's own words for a fault (its msg, else its localized message)."""
    msg = getattr(fault, "msg", None) or ""
    if not msg:
        for lm in getattr(fault, "faultMessage", None) or ():
            msg = getattr(lm, "message", "") or ""
            if msg:
                break
    name = type(fault).__name__.rsplit(".", 1)[-1]
    return f"{name}: {msg}" if msg else name


def translate(exc: BaseException, action: str) -> OvsphereError:
    """The ovsphere error for ``exc`` raised while doing ``action``."""
    if isinstance(exc, OvsphereError):
        return exc
    what = fault_message(exc)
    if isinstance(exc, vim.fault.InvalidLogin):
        return VCenterAuthError(
            f"{action}: vCenter rejected the user or password",
            fix="check the credentials in --vcenter / OVSPHERE_VCENTER",
        )
    if isinstance(exc, vim.fault.NotAuthenticated | vim.fault.NoPermission):
        return VCenterAuthError(
            f"{action}: not allowed ({what})",
            fix="log in as a user with the privilege vCenter names",
        )
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound | vim.fault.NotFound):
        return NotFoundError(
            f"{action}: vCenter no longer has the object ({what})",
            fix="re-read the inventory; someone removed or renamed it",
        )
    if isinstance(exc, vim.fault.ConcurrentAccess):
        return ConflictError(
            f"{action}: changed concurrently by someone else ({what})",
            fix="re-read and try again",
        )
    if isinstance(exc, _TEMPORARY_FAULTS):
        return VCenterTemporaryError(f"{action}: {what}", fix="try again shortly")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return VCenterError(
            f"{action}: vCenter's TLS certificate is not trusted ({exc.verify_message})",
            fix="install vCenter's CA certificate, or pass --insecure to skip verification",
        )
    if isinstance(exc, OSError | http.client.HTTPException):
        return VCenterTemporaryError(
            f"{action}: cannot reach vCenter ({exc.__class__.__name__}: {exc})",
            fix="check that vCenter is up and the URL is right",
        )
    if isinstance(exc, vmodl.MethodFault):
        return VCenterError(f"{action}: vCenter refused: {what}")
    return VCenterError(f"{action}: unexpected failure: {exc.__class__.__name__}: {exc}")


@contextmanager
def vcenter_errors(action: str) -> Iterator[None]:
    """Run a block of vCenter calls, translating what escapes it."""
    try:
        yield
    except OvsphereError:
        raise
    except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
        raise translate(exc, action) from exc
